# Container images, one per service, from the root Dockerfile.
# Included by the root Makefile: `include deploy/images.mk`.
#   make images                          build all six, tagged with the chart's appVersion
#   make images IMAGE_REPOSITORY_PREFIX=registry.example.com/customer-portal IMAGE_TAG=1.2.3
#   make images IMAGE_SERVICES=gateway   build one

DOCKER ?= docker
IMAGE_REPOSITORY_PREFIX ?= customer-portal
IMAGE_SERVICES ?= auth subscriptions payments invoicing notifications gateway
# The chart uses appVersion as the default image tag, so build with the same.
IMAGE_TAG ?= $(shell sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$$/\1/p' deploy/helm/customer-portal/Chart.yaml)

.PHONY: images
images:
	@if ! command -v $(DOCKER) >/dev/null 2>&1 || ! $(DOCKER) info >/dev/null 2>&1; then \
		echo "make images: skipped, no Docker engine is reachable (install/start Docker, or set DOCKER=podman)"; \
		exit 0; \
	fi; \
	set -e; \
	for svc in $(IMAGE_SERVICES); do \
		echo "building $(IMAGE_REPOSITORY_PREFIX)/$$svc:$(IMAGE_TAG)"; \
		$(DOCKER) build --build-arg SERVICE=$$svc -t $(IMAGE_REPOSITORY_PREFIX)/$$svc:$(IMAGE_TAG) . ; \
	done
