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
		s := e.ParametersSchema
		if s["type"] != "object" || s["additionalProperties"] != false {
			t.Errorf("%s: schema is not a closed object: %v", e.ID, s)
		}
		for name, prop := range s["properties"].(map[string]any) {
			pm := prop.(map[string]any)
			if pm["type"] == nil || pm["description"] == nil {
				t.Errorf("%s.%s lacks type or description", e.ID, name)
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
	props := f.ParametersSchema["properties"].(map[string]any)
	if props["epsilon"].(map[string]any)["default"] != 0.01 || props["clip_min"] == nil || props["clip_max"] == nil {
		t.Errorf("FGSM schema differs from spec 002: %v", props)
	}
	tf, _ := Lookup(IDTextFooler)
	props = tf.ParametersSchema["properties"].(map[string]any)
	if props["num_words_to_change"].(map[string]any)["default"] != 5.0 || props["max_candidates"].(map[string]any)["default"] != 20.0 {
		t.Errorf("TextFooler schema differs from spec 002: %v", props)
	}
	// Catalog returns copies.
	cat[0].ParametersSchema["type"] = "mutated"
	if Catalog()[0].ParametersSchema["type"] != "object" {
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
	if _, _, err := ValidateParams("attack_nope", nil); !errors.Is(err, ErrUnknownAttack) {
		t.Errorf("unknown attack: %v", err)
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
	params, _, _ = ValidateParams(IDPGD, json.RawMessage(`{"eps": 0.3, "eps_step": 0.05, "max_iter": 20, "target_label": 4}`))
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
	params, _, _ = ValidateParams(IDSquare, json.RawMessage(`{"eps": 0.15, "max_queries": 300}`))
	if _, err := Run(context.Background(), IDSquare, params, scoreOnly{d.model}, Input{X: x, Labels: y}, nil); err != nil {
		t.Errorf("square on a black-box model: %v", err)
	}
}

type scoreOnly struct{ m *mlp }

func (s scoreOnly) Predict(ctx context.Context, x Batch) ([][]float32, error) {
	return s.m.Predict(ctx, x)
}
func (s scoreOnly) NumClasses() int { return s.m.NumClasses() }
