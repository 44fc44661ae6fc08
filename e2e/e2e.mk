# End-to-end cluster targets; included by the top-level Makefile (include e2e/e2e.mk).
E2E_SCRIPTS := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))/scripts

.PHONY: tools cluster-up cluster-down e2e-smoke

# Debian prometheus/promtool + etcd, kube-apiserver & co., kubectl, kwok, helm (cached).
tools:
	$(E2E_SCRIPTS)/setup.sh

# Starts the local control plane, Prometheus, traffic generator and rule sync;
# prints the KUBECONFIG to use (all settings: $${SLO_WARDEN_E2E_DIR:-/tmp/slo-warden-e2e}/env).
cluster-up:
	$(E2E_SCRIPTS)/cluster-up.sh

cluster-down:
	$(E2E_SCRIPTS)/cluster-down.sh

e2e-smoke:
	$(E2E_SCRIPTS)/smoke.sh
