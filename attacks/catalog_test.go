package attacks

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCatalog(t *testing.T) {
	want := map[string]string{IDFGSM: "CV", IDPGD: "CV", IDHopSkipJump: "CV", IDSquare: "CV", IDTextFooler: "NLP"}
	cat := Catalog()
	if len(cat) != len(want) {
		t.Fatalf("catalog has %d entries", len(cat))
	}
	for _, e := range cat {
		if want[e.ID] == "" || len(e.CompatibleModelTypes) != 1 || e.CompatibleModelTypes[0] != want[e.ID] || e.Name == "" || e.Description == "" {
			t.Errorf("bad entry %+v", e)
		}
		s := e.ParametersJSONSchema
		if s["type"] != "object" || s["additionalProperties"] != false {
			t.Errorf("%s: schema is not a closed object: %v", e.ID, s)
		}
		for name, prop := range s["properties"].(map[string]any) {
			pm := prop.(map[string]any)
			if pm["type"] == nil || pm["description"] == nil {
				t.Errorf("%s.%s lacks type or description", e.ID, name)
			}
		}
		// The flat map (spec 002) names each parameter, no JSON Schema keywords at its top.
		if e.ParametersSchema["type"] != nil || e.ParametersSchema["properties"] != nil || len(e.ParametersSchema) == 0 {
			t.Errorf("%s: parameters_schema is not the flat map: %v", e.ID, e.ParametersSchema)
		}
		for name, p := range e.ParametersSchema {
			if p["type"] == nil || p["description"] == nil {
				t.Errorf("%s.%s: flat entry lacks type or description: %v", e.ID, name, p)
			}
			if s["properties"].(map[string]any)[name] == nil {
				t.Errorf("%s.%s: in the flat map but not in the JSON Schema", e.ID, name)
			}
		}
		// Defaults validate and decode.
		params, details, err := ValidateParams(e.ID, nil)
		if err != nil {
			t.Errorf("%s: defaults rejected: %v %v", e.ID, err, details)
		}
		if _, err := json.Marshal(params); err != nil {
			t.Error(err)
		}
	}
	// Spec 002 parameter names and defaults.
	f, _ := Lookup(IDFGSM)
	flat := f.ParametersSchema
	if flat["epsilon"]["default"] != 0.01 || flat["epsilon"]["type"] != "number" || flat["clip_min"]["default"] != 0.0 || flat["clip_max"]["default"] != 1.0 {
		t.Errorf("FGSM schema differs from spec 002: %v", flat)
	}
	tf, _ := Lookup(IDTextFooler)
	flat = tf.ParametersSchema
	if flat["num_words_to_change"]["default"] != 5.0 || flat["max_candidates"]["default"] != 20.0 || flat["num_words_to_change"]["type"] != "integer" {
		t.Errorf("TextFooler schema differs from spec 002: %v", flat)
	}
	// Every perturbation attack names its radius epsilon, with ART's eps as an alias.
	for _, id := range []string{IDFGSM, IDPGD, IDSquare} {
		e, _ := Lookup(id)
		if e.ParametersSchema["epsilon"] == nil || e.ParametersSchema["eps"] != nil {
			t.Errorf("%s: flat map %v, want epsilon (and no eps)", id, e.ParametersSchema)
		}
		if as, _ := e.ParametersSchema["epsilon"]["aliases"].([]string); len(as) != 1 || as[0] != "eps" {
			t.Errorf("%s: epsilon's aliases %v", id, e.ParametersSchema["epsilon"]["aliases"])
		}
		if e.ParametersJSONSchema["properties"].(map[string]any)["eps"] == nil {
			t.Errorf("%s: the JSON Schema does not admit the alias eps", id)
		}
	}
	// Catalog returns copies.
	cat[0].ParametersJSONSchema["type"] = "mutated"
	cat[0].ParametersSchema["epsilon"]["default"] = 9.0
	if Catalog()[0].ParametersJSONSchema["type"] != "object" || Catalog()[0].ParametersSchema["epsilon"]["default"] != 0.01 {
		t.Error("Catalog exposes shared state")
	}
}

func TestValidateParams(t *testing.T) {
	p, d, err := ValidateParams(IDFGSM, json.RawMessage(`{"epsilon": 0.05}`))
	if err != nil || d != nil {
		t.Fatalf("valid params rejected: %v %v", err, d)
	}
	if p["epsilon"] != 0.05 || p["clip_min"] != 0.0 || p["clip_max"] != 1.0 {
		t.Errorf("defaults not applied: %v", p)
	}
	p, _, err = ValidateParams(IDTextFooler, json.RawMessage(`{"num_words_to_change": 2, "max_candidates": 10}`))
	if err != nil || p["num_words_to_change"] != int64(2) || p["max_candidates"] != int64(10) {
		t.Fatalf("spec 002 launch example: %v %v", p, err)
	}
	for _, tc := range []struct {
		id, raw string
		fields  []string
	}{
		{IDFGSM, `{"epsilon": "big"}`, []string{"epsilon"}},
		{IDFGSM, `{"epsilon": -1}`, []string{"epsilon"}},
		{IDFGSM, `{"epsilon": 0.1, "epsilom": 3, "foo": true}`, []string{"epsilom", "foo"}},
		{IDFGSM, `{"clip_min": 1, "clip_max": 0}`, []string{"clip_max"}},
		{IDPGD, `{"norm": "1", "max_iter": 2.5, "eps_step": 0}`, []string{"norm", "max_iter", "eps_step"}},
		{IDPGD, `{"epsilon_step": 0}`, []string{"epsilon_step"}},
		{IDPGD, `{"epsilon": 0.1, "eps": 0.2}`, []string{"epsilon", "eps"}},
		{IDSquare, `{"epsilon": 0.1, "eps": "0.1"}`, []string{"epsilon", "eps"}},
		{IDSquare, `{"eps": -1}`, []string{"eps"}},
		{IDHopSkipJump, `{"eps": 0.1}`, []string{"eps"}}, // an alias of a parameter the attack lacks is unknown
		{IDTextFooler, `{"epsilon": 0.1}`, []string{"epsilon"}},
		{IDHopSkipJump, `{"max_queries": -5}`, []string{"max_queries"}},
		{IDSquare, `{"p_init": 1.5}`, []string{"p_init"}},
		{IDTextFooler, `{"num_words_to_change": 0, "max_candidates": "ten"}`, []string{"num_words_to_change", "max_candidates"}},
		{IDTextFooler, `[1,2]`, []string{""}},
		{IDTextFooler, `{"x":`, []string{""}},
	} {
		_, d, err := ValidateParams(tc.id, json.RawMessage(tc.raw))
		if !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s %s: err %v, want ErrInvalidParams", tc.id, tc.raw, err)
			continue
		}
		if len(d) != len(tc.fields) {
			t.Errorf("%s %s: details %v, want fields %v", tc.id, tc.raw, d, tc.fields)
		}
		for _, f := range tc.fields {
			if d[f] == "" {
				t.Errorf("%s %s: no detail for %q in %v", tc.id, tc.raw, f, d)
			}
		}
		t.Logf("%s %s → %v", tc.id, tc.raw, d)
	}
	if p, d2, _ := ValidateParams(IDPGD, json.RawMessage(`{"epsilon": 0.1, "eps": 0.2}`)); p != nil || !strings.Contains(d2["eps"], "epsilon") || !strings.Contains(d2["epsilon"], "eps") {
		t.Errorf("a conflict must name both names: %v", d2)
	}
	if _, _, err := ValidateParams("attack_nope", nil); !errors.Is(err, ErrUnknownAttack) {
		t.Errorf("unknown attack: %v", err)
	}
}

func TestValidateParamsAliases(t *testing.T) {
	for _, tc := range []struct {
		id, raw string
		want    map[string]any
	}{
		{IDPGD, `{"epsilon": 0.2, "epsilon_step": 0.05}`, map[string]any{"epsilon": 0.2, "epsilon_step": 0.05}},
		{IDPGD, `{"eps": 0.2, "eps_step": 0.05}`, map[string]any{"epsilon": 0.2, "epsilon_step": 0.05}},
		{IDPGD, `{"epsilon": 0.2, "eps": 0.20}`, map[string]any{"epsilon": 0.2}}, // the same value twice is one value
		{IDSquare, `{"eps": 0.15}`, map[string]any{"epsilon": 0.15}},
		{IDFGSM, `{"eps": 0.1}`, map[string]any{"epsilon": 0.1}},
	} {
		p, d, err := ValidateParams(tc.id, json.RawMessage(tc.raw))
		if err != nil {
			t.Errorf("%s %s: %v %v", tc.id, tc.raw, err, d)
			continue
		}
		for k, v := range tc.want {
			if p[k] != v {
				t.Errorf("%s %s: %s = %v, want %v (params %v)", tc.id, tc.raw, k, p[k], v, p)
			}
		}
		if _, ok := p["eps"]; ok {
			t.Errorf("%s %s: the alias survived: %v", tc.id, tc.raw, p)
		}
	}
}

func TestRunAcceptsStoredAliases(t *testing.T) {
	// A job queued by an older API stored ART's names.
	d := digits(t)
	x, y := d.correct(4)
	r, err := Run(context.Background(), IDFGSM, map[string]any{"eps": 0.15, "clip_min": 0.0, "clip_max": 1.0}, d.model, Input{X: x, Labels: y}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := Stats(r.LinfNorms, nil).Max; m < 0.14 || m > 0.15+1e-6 {
		t.Errorf("stored eps not used: max L∞ %g", m)
	}
}

func TestRunDispatch(t *testing.T) {
	d := digits(t)
	x, y := d.correct(10)
	params, _, err := ValidateParams(IDFGSM, json.RawMessage(`{"epsilon": 0.2}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), IDFGSM, params, d.model, Input{X: x, Labels: y}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := Stats(r.LinfNorms, nil).Max; m < 0.19 || m > 0.2+1e-6 {
		t.Errorf("epsilon not passed through: max L∞ %g", m)
	}
	params, _, _ = ValidateParams(IDPGD, json.RawMessage(`{"epsilon": 0.3, "epsilon_step": 0.05, "max_iter": 20, "target_label": 4}`))
	r, err = Run(context.Background(), IDPGD, params, d.model, Input{X: x, Labels: y}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Targets == nil || r.Targets[0] != 4 || r.SuccessRate < 0.8 {
		t.Errorf("target_label not applied: targets %v success %.2f", r.Targets, r.SuccessRate)
	}
	// A score-only model cannot run white-box attacks.
	_, err = Run(context.Background(), IDFGSM, params, scoreOnly{d.model}, Input{X: x}, nil)
	if err == nil || !strings.Contains(err.Error(), "gradients") {
		t.Errorf("white-box attack on a black-box model: %v", err)
	}
	params, _, _ = ValidateParams(IDSquare, json.RawMessage(`{"epsilon": 0.15, "max_queries": 300}`))
	if _, err := Run(context.Background(), IDSquare, params, scoreOnly{d.model}, Input{X: x, Labels: y}, nil); err != nil {
		t.Errorf("square on a black-box model: %v", err)
	}
}

type scoreOnly struct{ m *mlp }

func (s scoreOnly) Predict(ctx context.Context, x Batch) ([][]float32, error) {
	return s.m.Predict(ctx, x)
}
func (s scoreOnly) NumClasses() int { return s.m.NumClasses() }
