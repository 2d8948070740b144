{{/* Chart name, overridable. */}}
{{- define "customer-portal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name prefix: <release>-<chart> unless the release already contains it. */}}
{{- define "customer-portal.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "customer-portal.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels shared by every object of the release. */}}
{{- define "customer-portal.labels" -}}
helm.sh/chart: {{ include "customer-portal.chart" . }}
app.kubernetes.io/name: {{ include "customer-portal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: customer-portal
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector matching every pod of the release. */}}
{{- define "customer-portal.releaseSelector" -}}
app.kubernetes.io/name: {{ include "customer-portal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector of one service's pods. Call with (dict "root" $ "name" $svc). */}}
{{- define "customer-portal.selector" -}}
{{ include "customer-portal.releaseSelector" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* Name of one service's objects. Call with (dict "root" $ "name" $svc). */}}
{{- define "customer-portal.serviceName" -}}
{{- printf "%s-%s" (include "customer-portal.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret the pods read connection strings from. */}}
{{- define "customer-portal.secretName" -}}
{{- if and (not .Values.secrets.create) .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-connections" (include "customer-portal.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Image reference of one service. Call with (dict "root" $ "name" $svc). */}}
{{- define "customer-portal.image" -}}
{{- $img := .root.Values.image -}}
{{- $repo := printf "%s/%s" $img.repositoryPrefix .name -}}
{{- with (get $img.digests .name) -}}
{{- printf "%s@%s" $repo . -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Services (enabled) that `name` calls: every enabled service whose callers list
contains it. Returns a comma-separated list (empty when none).
Call with (dict "root" $ "name" $svc).
*/}}
{{- define "customer-portal.callees" -}}
{{- $out := list -}}
{{- range $callee, $c := .root.Values.services -}}
{{- if and $c.enabled (has $.name $c.callers) -}}
{{- $out = append $out $callee -}}
{{- end -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/*
Base URLs of the live, test and unified portals as YAML (live/test/unified):
portalUrls.<site> when set, else <portalUrls.scheme>://<ingress host>. auth
(links in emails) and the gateway (which site a request is for) get the same
values. Fails when two are equal: the gateway could not tell those sites apart.
*/}}
{{- define "customer-portal.portalUrls" -}}
{{- $u := .Values.portalUrls -}}
{{- $h := .Values.ingress.hosts -}}
{{- $live := default (printf "%s://%s" $u.scheme $h.livePortal.host) $u.live | trimSuffix "/" -}}
{{- $test := default (printf "%s://%s" $u.scheme $h.testPortal.host) $u.test | trimSuffix "/" -}}
{{- $unified := default (printf "%s://%s" $u.scheme $h.unifiedPortal.host) $u.unified | trimSuffix "/" -}}
{{- if or (eq $live $test) (eq $live $unified) (eq $test $unified) -}}
{{- fail (printf "portalUrls: the live (%s), test (%s) and unified (%s) portal URLs must all differ" $live $test $unified) -}}
{{- end -}}
live: {{ $live | quote }}
test: {{ $test | quote }}
unified: {{ $unified | quote }}
{{- end -}}
