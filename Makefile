# Keyless — every command a developer or CI needs. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export KEYLESS_CACHE ?= $(HOME)/.cache/keyless
# Node 24 LTS for everything: the machine's own when it is 24, otherwise from the npm registry (hack/ensure-node.sh).
NODE_DIR := $(shell hack/ensure-node.sh)
ifeq ($(NODE_DIR),)
$(error could not provide Node 24; run hack/ensure-node.sh to see why)
endif
export PATH := $(NODE_DIR):$(CURDIR)/bin:$(PATH)

DEV_DIR := $(CURDIR)/.dev
TEST_DIR := $(CURDIR)/.test
IMAGE ?= keyless:dev

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-20s %s\n", $$1, $$2 }'

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.venv/.installed: test/emulators/aws/requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

.PHONY: lua
lua: ## Lua 5.1 (Debian's lua5.1, the dialect Argo CD embeds) for the Argo CD health check tests
	command -v lua5.1 >/dev/null || (apt-get update -qq && apt-get install -y -qq lua5.1)

.PHONY: deps
deps: node_modules/.installed .venv/.installed lua ## install the Node dependencies, the moto virtualenv and lua5.1

.PHONY: lint
lint: deps ## eslint and the TypeScript type check
	npx eslint .
	npx tsc -p tsconfig.json --noEmit

.PHONY: build
build: deps ## compile the operator to dist/
	npx tsc -p tsconfig.build.json

.PHONY: test
test: deps ## everything: lint, type check, unit, conformance, integration and end-to-end suites
	hack/test.sh

.PHONY: histories
histories: node_modules/.installed ## the edit-history property test with a larger budget (RUNS=…, default 2000; SEED=… replays one)
	KEYLESS_PROPERTY_RUNS=$(or $(RUNS),2000) $(if $(SEED),KEYLESS_PROPERTY_SEED=$(SEED)) node --test --test-reporter=spec src/reconciler/workload-identity/edit-histories.test.ts

.PHONY: controlplane-build
controlplane-build: ## build (or reuse from the cache) the local control plane and bin/kubectl
	hack/controlplane.sh build

.PHONY: controlplane-up
controlplane-up: ## start etcd, kube-apiserver and kube-controller-manager on 127.0.0.1; writes .dev/kubeconfig
	hack/controlplane.sh up $(DEV_DIR)/controlplane $(DEV_DIR)/kubeconfig

.PHONY: controlplane-down
controlplane-down: ## stop the control plane that controlplane-up started
	hack/controlplane.sh down $(DEV_DIR)/controlplane

.PHONY: controlplane-status
controlplane-status: ## is the local control plane running, and where
	hack/controlplane.sh status $(DEV_DIR)/controlplane

.PHONY: peers-build
peers-build: ## build (or reuse from the cache) kwok and the EKS and Azure injection webhooks; links them in bin/
	hack/peers.sh build

.PHONY: helm-build
helm-build: ## build (or reuse from the cache) helm v3.22.0 for the chart's tests; links bin/helm
	hack/helm.sh build

.PHONY: peers-status
peers-status: ## are kwok and the injection webhooks of make dev running
	hack/peers.sh status $(DEV_DIR)/peers

.PHONY: dev-up
dev-up: deps ## the local system in the background (control plane, kwok and the injection webhooks, emulators, CRDs, CloudAccounts, operator); writes .dev/env
	hack/dev.sh up

.PHONY: dev
dev: deps ## the whole system locally, with the operator in the foreground
	hack/dev.sh up --no-operator
	hack/dev.sh usage
	hack/dev.sh operator

.PHONY: dev-down
dev-down: ## stop everything dev-up started
	hack/dev.sh down

.PHONY: image
image: ## build the operator image (needs a Docker engine)
	docker build -t $(IMAGE) .

.PHONY: bench
bench: node_modules/.installed .venv/.installed ## benchmark cloud calls, steady state, scale and memory on a control plane in .bench/ (flags: BENCH_N=…, docs/benchmarks.md)
	bench/bench.sh

.PHONY: chaos
chaos: node_modules/.installed .venv/.installed ## faults, kills, API server restarts and churn over a mixed population, then checks (flags: CHAOS_N=…, docs/reliability.md)
	chaos/chaos.sh

.PHONY: deploy
deploy: ## install into the cluster of the current kubeconfig context
	kubectl apply -k config/default
