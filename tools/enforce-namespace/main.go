// enforce-namespace rewrites PrometheusRule documents as Prometheus Operator does for a
// Prometheus with enforcedNamespaceLabel set, with the operator's own code
// (pkg/namespacelabeler: the label set on every rule, and prom-label-proxy's injectproxy adding
// the namespace matcher to every selector of every expression), and prints their groups as one
// Prometheus rule file.
//
//	enforce-namespace LABEL < prometheusrules.yaml > rules.yaml    # exit 1: cannot; 2: usage
//
// Built and cached by e2e/scripts/build-tools.sh; tests/promtool.rs runs it to check that
// slo-warden's rules record and alert the same under enforcement.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus-operator/prometheus-operator/pkg/namespacelabeler"
	"sigs.k8s.io/yaml"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "enforce-namespace: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 2 || os.Args[1] == "" {
		fmt.Fprintln(os.Stderr, "usage: enforce-namespace LABEL < prometheusrules.yaml")
		os.Exit(2)
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("cannot read stdin: %v", err)
	}
	// As the operator builds it for a Prometheus (not a ThanosRuler), without exclusions.
	labeler := namespacelabeler.New(os.Args[1], nil, true)
	groups := []monitoringv1.RuleGroup{}
	for i, doc := range bytes.Split(append([]byte("\n"), in...), []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var rule monitoringv1.PrometheusRule
		if err := yaml.UnmarshalStrict(doc, &rule); err != nil {
			fail("document %d: %v", i, err)
		}
		if rule.Namespace == "" {
			fail("document %d (%s) has no namespace to enforce", i, rule.Name)
		}
		if err := labeler.EnforceNamespaceLabel(&rule); err != nil {
			fail("%s/%s: %v", rule.Namespace, rule.Name, err)
		}
		groups = append(groups, rule.Spec.Groups...)
	}
	out, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		fail("cannot render: %v", err)
	}
	os.Stdout.Write(out)
}
