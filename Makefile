# The two commands: `make run` starts everything locally, `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Where `pip install --user uv` puts uv, in case that is how install.sh got it.
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: help install run test proto proto-check lint format typecheck

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## install what is missing (uv, Python deps, SecantusDB, Chromium, RabbitMQ)
	@bash tools/devstack/scripts/install.sh

run: install ## start SecantusDB, the SMTP sink and all six services, seed demo data
	@uv run --frozen python -m devstack run

test: install ## ruff, format check, mypy, proto freshness, then pytest (unit, integration, e2e)
	@bash tools/devstack/scripts/check.sh

proto: ## regenerate libs/billing_protos from proto/
	@./scripts/gen_protos.sh

proto-check: ## fail if the generated protos are stale
	@bash tools/devstack/scripts/proto_check.sh

lint: ## ruff check and format check only
	uv run --frozen ruff check .
	uv run --frozen ruff format --check .

format: ## apply ruff's formatting and safe fixes
	uv run --frozen ruff check --fix .
	uv run --frozen ruff format .

typecheck: ## mypy over the kit, the services and the tools
	@MYPYPATH=$$(ls -d libs/billing_kit/src services/*/src tools/*/src | paste -sd:) \
	  uv run --frozen mypy $$(ls -d libs/billing_kit/src services/*/src tools/*/src)

# Container images (make images), owned by deploy/.
-include deploy/images.mk
