// grafana-validate checks Grafana dashboard JSON (the classic model with schemaVersion, as
// Grafana 10 and later store it) against the types Grafana generates from its own schemas,
// published as github.com/grafana/grafana-foundation-sdk/go.
//
//	grafana-validate FILE.json...    # exit 0: all valid; 1: some invalid (listed); 2: usage
//
// Strict: an unknown or misspelt key, a value of the wrong JSON type, a missing required field,
// a value out of range, a panel type or variable type Grafana does not know are all errors.
// Built and cached by e2e/scripts/build-tools.sh; tests/dashboards.rs runs it.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// The SDK types variable types as plain strings: these are the ones its schema lists.
var variableTypes = map[dashboard.VariableType]bool{
	dashboard.VariableTypeQuery: true, dashboard.VariableTypeAdhoc: true,
	dashboard.VariableTypeGroupby: true, dashboard.VariableTypeConstant: true,
	dashboard.VariableTypeDatasource: true, dashboard.VariableTypeInterval: true,
	dashboard.VariableTypeTextbox: true, dashboard.VariableTypeCustom: true,
	dashboard.VariableTypeSystem: true, dashboard.VariableTypeSnapshot: true,
	dashboard.VariableTypeSwitch: true,
}

func validate(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var errs cog.BuildErrors
	add := func(prefix string, err error) {
		if err = nonEmpty(err); err != nil {
			errs = append(errs, cog.MakeBuildErrors(prefix, err)...)
		}
	}

	// The whole dashboard, strictly: panel options and fieldConfig.defaults.custom are decoded
	// by the panel type's own schema, targets by the panel datasource type's.
	var d dashboard.Dashboard
	if err := nonEmpty(d.UnmarshalJSONStrict(raw)); err != nil {
		var be cog.BuildErrors
		if !errors.As(err, &be) {
			return err // not even a JSON object
		}
		errs = append(errs, be...)
	}
	add("dashboard", d.Validate())
	for i, v := range d.Templating.List {
		if !variableTypes[v.Type] {
			add(fmt.Sprintf("templating.list[%d].type", i), fmt.Errorf("unknown variable type %q", v.Type))
		}
	}

	// Panels one by one, from the raw JSON: the SDK's strict decoder of PanelOrRowPanel drops
	// the panel it decoded, so range checks would never run, and a panel of an unknown type
	// would pass with free-form options.
	var top struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return errors.Join(errs, err)
	}
	for i, rp := range top.Panels {
		prefix := fmt.Sprintf("panels[%d]", i)
		var kind struct {
			Type   string            `json:"type"`
			Panels []json.RawMessage `json:"panels"`
		}
		_ = json.Unmarshal(rp, &kind)
		if kind.Type == "row" {
			var row dashboard.RowPanel
			if nonEmpty(row.UnmarshalJSONStrict(rp)) == nil {
				add(prefix, row.Validate())
			}
			for j, child := range kind.Panels {
				validatePanel(fmt.Sprintf("%s.panels[%d]", prefix, j), child, add)
			}
			continue
		}
		validatePanel(prefix, rp, add)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func validatePanel(prefix string, raw json.RawMessage, add func(string, error)) {
	var p dashboard.Panel
	if err := nonEmpty(p.UnmarshalJSONStrict(raw)); err != nil {
		return // already reported by the dashboard's strict decode
	}
	add(prefix, p.Validate())
	if _, ok := cog.NewRuntime().ConfigForPanelcfgVariant(p.Type); !ok {
		add(prefix+".type", fmt.Errorf("no schema for panel type %q", p.Type))
	}
	// Without a datasource type the targets are decoded as free-form objects: nothing checked.
	if len(p.Targets) > 0 && (p.Datasource == nil || p.Datasource.Type == nil) {
		add(prefix+".datasource", errors.New("panel has targets but no datasource type, so they cannot be checked"))
	}
}

// The generated UnmarshalJSONStrict returns a typed-nil cog.BuildErrors on success (a non-nil
// error interface): empty lists are no error.
func nonEmpty(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grafana-validate FILE.json...")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	failed := 0
	for _, path := range os.Args[1:] {
		if err := validate(path); err != nil {
			failed++
			fmt.Printf("FAIL %s\n  %s\n", path, strings.ReplaceAll(err.Error(), "\n", "\n  "))
		} else {
			fmt.Printf("ok   %s\n", path)
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}
