package attacks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/wardenlab/warden/attacks/wordnet"
)

// Attack IDs as used by the API.
const (
	IDFGSM        = "attack_fgsm"
	IDPGD         = "attack_pgd"
	IDHopSkipJump = "attack_hopskipjump"
	IDSquare      = "attack_square"
	IDTextFooler  = "attack_textfooler"
)

// Entry describes one attack for GET /v1/attacks.
type Entry struct {
	ID                   string   `json:"id"`
	Name                 string   `json:"name"`
	Description          string   `json:"description"`
	CompatibleModelTypes []string `json:"compatible_model_types"`
	Access               string   `json:"access"` // "white-box", "score-based", "decision-based"
	// ParametersSchema is spec 002's flat map: each parameter's name →
	// {type, default, description}, plus its bounds and the aliases it is
	// also accepted under.
	ParametersSchema map[string]map[string]any `json:"parameters_schema"`
	// ParametersJSONSchema is the same as one JSON Schema (draft 2020-12)
	// of the attack_parameters object, aliases included.
	ParametersJSONSchema map[string]any `json:"parameters_json_schema"`
}

// method is a catalog entry as declared: schema is the JSON Schema of the
// parameters under their own names only, which ValidateParams checks
// after it has renamed the aliases.
type method struct {
	ID, Name, Description string
	CompatibleModelTypes  []string
	Access                string
	schema                map[string]any
}

// aliases maps a parameter name that Adversarial Robustness Toolbox (ART)
// uses to the name this catalog (spec 002) uses; an alias applies to every
// attack that has the parameter it names.
var aliases = map[string]string{
	"eps":      "epsilon",
	"eps_step": "epsilon_step",
}

func num(def, lo, hi float64, desc string) map[string]any {
	return map[string]any{"type": "number", "default": def, "minimum": lo, "maximum": hi, "description": desc}
}

func integer(def, lo, hi int, desc string) map[string]any {
	return map[string]any{"type": "integer", "default": def, "minimum": lo, "maximum": hi, "description": desc}
}

func object(props map[string]any) map[string]any {
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
}

func imageProps(extra map[string]any) map[string]any {
	p := map[string]any{
		"clip_min":     num(0, -1e6, 1e6, "Smallest valid input value; adversarial inputs are clipped to [clip_min, clip_max]."),
		"clip_max":     num(1, -1e6, 1e6, "Largest valid input value."),
		"targeted":     map[string]any{"type": "boolean", "default": false, "description": "Aim at target_label instead of moving away from the true label."},
		"target_label": map[string]any{"type": "integer", "minimum": 0, "maximum": 100000, "description": "Class index to reach; implies targeted."},
		"seed":         integer(0, 0, 1<<53, "Seed for the attack's random choices (results are reproducible)."),
	}
	for k, v := range extra {
		p[k] = v
	}
	return object(p)
}

var catalog = []method{
	{
		ID: IDFGSM, Name: "Fast Gradient Sign Method", Access: "white-box",
		Description:          "Generates adversarial examples by adding perturbation in the direction of the sign of the gradient (Goodfellow et al. 2015): x' = clip(x + epsilon*sign(grad_x loss)).",
		CompatibleModelTypes: []string{"CV"},
		schema: imageProps(map[string]any{
			"epsilon": num(0.01, 0, 1e6, "Magnitude of perturbation (L-infinity)."),
		}),
	},
	{
		ID: IDPGD, Name: "Projected Gradient Descent", Access: "white-box",
		Description:          "Iterated gradient steps projected back onto the epsilon-ball and the clip range, with optional random restarts (Madry et al. 2018).",
		CompatibleModelTypes: []string{"CV"},
		schema: imageProps(map[string]any{
			"norm":            map[string]any{"type": "string", "enum": []any{"inf", "2"}, "default": "inf", "description": "Threat model: L-infinity (\"inf\") or L2 (\"2\")."},
			"epsilon":         num(0.3, 0, 1e6, "Radius of the perturbation ball."),
			"epsilon_step":    map[string]any{"type": "number", "default": 0.1, "exclusiveMinimum": 0, "maximum": 1e6, "description": "Step size (alpha) per iteration."},
			"max_iter":        integer(100, 1, 10000, "Number of gradient steps."),
			"num_random_init": integer(0, 0, 100, "Random restarts from uniform points in the ball; 0 starts at the input."),
			"early_stop":      map[string]any{"type": "boolean", "default": false, "description": "Stop iterating a sample once it is adversarial."},
		}),
	},
	{
		ID: IDHopSkipJump, Name: "HopSkipJumpAttack", Access: "decision-based",
		Description:          "Decision-based L2 attack using only predicted labels: boundary binary search, Monte-Carlo gradient-direction estimates and geometric step sizes (Chen, Jordan, Wainwright 2020).",
		CompatibleModelTypes: []string{"CV"},
		schema: imageProps(map[string]any{
			"max_iter":    integer(50, 0, 1000, "Iterations of estimate/step/binary search."),
			"max_eval":    integer(1000, 1, 100000, "Most model queries for one gradient estimate."),
			"init_eval":   integer(100, 1, 100000, "Queries for the first gradient estimate (grows with sqrt(iteration))."),
			"init_size":   integer(100, 1, 100000, "Random-noise draws tried to find an adversarial starting point."),
			"max_queries": integer(5000, 0, 10000000, "Per-sample query budget; 0 means unlimited."),
			"gamma":       map[string]any{"type": "number", "default": 1.0, "exclusiveMinimum": 0, "maximum": 1e6, "description": "Binary-search threshold factor: theta = gamma / d^(3/2)."},
		}),
	},
	{
		ID: IDSquare, Name: "Square Attack", Access: "score-based",
		Description:          "Score-based L-infinity random search that changes random squares of the input and keeps changes that lower the margin loss (Andriushchenko et al. 2020).",
		CompatibleModelTypes: []string{"CV"},
		schema: imageProps(map[string]any{
			"epsilon":     map[string]any{"type": "number", "default": 0.05, "exclusiveMinimum": 0, "maximum": 1e6, "description": "L-infinity radius of the perturbation."},
			"max_queries": integer(1000, 1, 10000000, "Per-sample query budget."),
			"p_init":      map[string]any{"type": "number", "default": 0.05, "exclusiveMinimum": 0, "maximum": 1, "description": "Initial fraction of the input changed per step."},
		}),
	},
	{
		ID: IDTextFooler, Name: "TextFooler", Access: "score-based",
		Description:          "Generates adversarial text by replacing words with semantically similar ones: words ranked by deletion importance, WordNet synonyms sharing the word's part of speech, stop words never replaced (Jin et al. 2020).",
		CompatibleModelTypes: []string{"NLP"},
		schema: object(map[string]any{
			"num_words_to_change": integer(5, 1, 1000, "Most words that may be replaced."),
			"max_candidates":      integer(20, 1, 1000, "Most synonyms tried per word."),
			"target_label":        map[string]any{"type": "integer", "minimum": 0, "maximum": 100000, "description": "Class index to reach; absent means untargeted."},
		}),
	},
}

// Catalog returns the attack descriptions (fresh copies).
func Catalog() []Entry {
	out := make([]Entry, len(catalog))
	for i, m := range catalog {
		out[i] = m.entry()
	}
	return out
}

// entry renders a method for GET /v1/attacks.
func (m method) entry() Entry {
	e := Entry{ID: m.ID, Name: m.Name, Description: m.Description, Access: m.Access,
		CompatibleModelTypes: append([]string(nil), m.CompatibleModelTypes...),
		ParametersSchema:     map[string]map[string]any{}, ParametersJSONSchema: deepCopy(m.schema)}
	props := e.ParametersJSONSchema["properties"].(map[string]any)
	for name, p := range m.properties() {
		flat := deepCopy(p)
		if as := m.aliasesOf(name); len(as) > 0 {
			flat["aliases"] = as
			for _, a := range as {
				alias := deepCopy(p)
				alias["description"] = fmt.Sprintf("Alias of %s (ART's name); give one of the two.", name)
				props[a] = alias
			}
		}
		e.ParametersSchema[name] = flat
	}
	return e
}

// properties is the method's parameters by their own names.
func (m method) properties() map[string]map[string]any {
	out := map[string]map[string]any{}
	for k, v := range m.schema["properties"].(map[string]any) {
		out[k] = v.(map[string]any)
	}
	return out
}

// aliasesOf lists the aliases of a parameter of this method (sorted).
func (m method) aliasesOf(name string) []string {
	var out []string
	for a, c := range aliases {
		if c == name {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

func deepCopy(v map[string]any) map[string]any {
	b, _ := json.Marshal(v)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// Lookup returns the catalog entry for id.
func Lookup(id string) (Entry, bool) {
	m, ok := lookup(id)
	if !ok {
		return Entry{}, false
	}
	return m.entry(), true
}

func lookup(id string) (method, bool) {
	for _, m := range catalog {
		if m.ID == id {
			return m, true
		}
	}
	return method{}, false
}

// Errors returned by ValidateParams.
var (
	ErrUnknownAttack = errors.New("attacks: unknown attack method")
	ErrInvalidParams = errors.New("attacks: invalid attack parameters")
)

var (
	schemaOnce sync.Once
	schemas    map[string]*jsonschema.Schema
	schemaErr  error
)

func compiled() (map[string]*jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		schemas = map[string]*jsonschema.Schema{}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		for _, e := range catalog {
			// Round-trip through JSON so the compiler sees plain JSON values.
			b, err := json.Marshal(e.schema)
			if err != nil {
				schemaErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				schemaErr = err
				return
			}
			url := "https://warden.invalid/attacks/" + e.ID + ".json"
			if err := c.AddResource(url, doc); err != nil {
				schemaErr = err
				return
			}
			if schemas[e.ID], err = c.Compile(url); err != nil {
				schemaErr = err
				return
			}
		}
	})
	return schemas, schemaErr
}

// ValidateParams checks raw (a JSON object; empty or null means {}) against
// the attack's parameter schema. A parameter may be given under an alias
// (ART's eps for epsilon): it is renamed first, and giving both names with
// different values is an error naming both. On success params holds every
// property with a default, overridden by the given values, under the
// catalog's names (numbers as float64, integers as int64). On failure err
// wraps ErrInvalidParams and details maps each offending field ("" for the
// object itself) to a message, under the name the client used; unknown
// fields are reported under their own names.
func ValidateParams(id string, raw json.RawMessage) (params map[string]any, details map[string]string, err error) {
	m, ok := lookup(id)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrUnknownAttack, id)
	}
	sch, err := compiled()
	if err != nil {
		return nil, nil, err
	}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		raw = json.RawMessage("{}")
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, map[string]string{"": "parameters are not valid JSON: " + err.Error()}, fmt.Errorf("%w: %v", ErrInvalidParams, err)
	}
	details = map[string]string{}
	obj, _ := inst.(map[string]any)
	given := m.rename(obj, details)
	if verr := sch[id].Validate(inst); verr != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(verr, &ve) {
			return nil, nil, verr
		}
		found := map[string]string{}
		collect(ve, found)
		for k, v := range found {
			if a, ok := given[k]; ok {
				k = a
			}
			details[k] = v
		}
	}
	params = map[string]any{}
	for k, p := range m.properties() {
		if d, ok := p["default"]; ok {
			params[k] = d
		}
	}
	for k, v := range obj {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil && !strings.ContainsAny(n.String(), ".eE") {
				v = i
			} else {
				f, _ := n.Float64()
				v = f
			}
		}
		params[k] = v
	}
	if len(details) == 0 {
		if lo, hi := toFloat(params["clip_min"]), toFloat(params["clip_max"]); params["clip_min"] != nil && !(hi > lo) {
			details["clip_max"] = fmt.Sprintf("must be greater than clip_min (%g)", lo)
		}
	}
	if len(details) > 0 {
		keys := make([]string, 0, len(details))
		for k := range details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, details, fmt.Errorf("%w for %s: %s", ErrInvalidParams, id, strings.Join(keys, ", "))
	}
	return params, nil, nil
}

// rename moves each alias in obj (nil is fine) to the parameter it stands
// for, when this method has that parameter; an alias it lacks stays, to be
// refused as unknown. given maps each renamed parameter to the alias the
// client used. A parameter given under both names with different values
// gets a detail under each name.
func (m method) rename(obj map[string]any, details map[string]string) (given map[string]string) {
	given = map[string]string{}
	props := m.properties()
	for alias, name := range aliases {
		v, ok := obj[alias]
		if _, has := props[name]; !ok || !has {
			continue
		}
		delete(obj, alias)
		w, both := obj[name]
		switch {
		case !both:
			obj[name], given[name] = v, alias
		case !sameValue(v, w):
			msg := fmt.Sprintf("given as %s and as its alias %s with different values; give one of them", name, alias)
			details[name], details[alias] = msg, msg
		}
	}
	return given
}

// sameValue compares two decoded JSON values, numbers by value (0.1 and
// 0.10 are the same).
func sameValue(a, b any) bool {
	na, okA := a.(json.Number)
	nb, okB := b.(json.Number)
	if okA && okB {
		fa, errA := na.Float64()
		fb, errB := nb.Float64()
		return errA == nil && errB == nil && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

// canonical returns validated params with any alias renamed (a job queued
// by an older API may carry ART's names).
func canonical(id string, params map[string]any) map[string]any {
	m, ok := lookup(id)
	if !ok {
		return params
	}
	out := make(map[string]any, len(params))
	for k, v := range params {
		out[k] = v
	}
	for alias, name := range aliases {
		if v, ok := out[alias]; ok {
			if _, has := m.properties()[name]; has {
				delete(out, alias)
				out[name] = v
			}
		}
	}
	return out
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case int:
		return float64(x)
	}
	return 0
}

var printer = message.NewPrinter(language.English)

// collect flattens a validation error tree into field → message.
func collect(ve *jsonschema.ValidationError, out map[string]string) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collect(c, out)
		}
		return
	}
	msg := ve.ErrorKind.LocalizedString(printer)
	if ap, ok := ve.ErrorKind.(*kind.AdditionalProperties); ok {
		for _, p := range ap.Properties {
			out[p] = "unknown parameter"
		}
		return
	}
	field := ""
	if len(ve.InstanceLocation) > 0 {
		field = ve.InstanceLocation[0]
	}
	if prev, ok := out[field]; ok && prev != msg {
		msg = prev + "; " + msg
	}
	out[field] = msg
}

// decode fills dst (pre-set with defaults) from validated params.
func decode(params map[string]any, dst any) error {
	b, err := json.Marshal(params)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

// Run executes image attack id with validated params (as returned by
// ValidateParams). White-box attacks need clf to be a GradientClassifier.
func Run(ctx context.Context, id string, params map[string]any, clf Classifier, in Input, progress Progress) (*Result, error) {
	target := func(c *Common) {
		if _, ok := params["target_label"]; ok {
			c.Targeted = true
		}
	}
	params = canonical(id, params)
	grad := func() (GradientClassifier, error) {
		g, ok := clf.(GradientClassifier)
		if !ok {
			return nil, fmt.Errorf("attacks: %s is white-box and needs a model that exposes gradients", id)
		}
		return g, nil
	}
	switch id {
	case IDFGSM:
		p := DefaultFGSMParams()
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		target(&p.Common)
		g, err := grad()
		if err != nil {
			return nil, err
		}
		return FGSM(ctx, g, in, p, progress)
	case IDPGD:
		p := DefaultPGDParams()
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		target(&p.Common)
		g, err := grad()
		if err != nil {
			return nil, err
		}
		return PGD(ctx, g, in, p, progress)
	case IDHopSkipJump:
		p := DefaultHopSkipJumpParams()
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		target(&p.Common)
		return HopSkipJump(ctx, clf, in, p, progress)
	case IDSquare:
		p := DefaultSquareParams()
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		target(&p.Common)
		return Square(ctx, clf, in, p, progress)
	case IDTextFooler:
		return nil, fmt.Errorf("attacks: %s attacks text; use RunText", id)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownAttack, id)
}

// RunText executes the TextFooler attack with validated params.
func RunText(ctx context.Context, params map[string]any, clf TextClassifier, wn *wordnet.WordNet, texts []string, labels []int, progress Progress) ([]TextResult, error) {
	p := DefaultTextFoolerParams()
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	return TextFooler(ctx, clf, wn, texts, labels, p, progress)
}

// LabelIndex maps a label name (case-insensitive, as in the launch request's
// target_label) to its class index, or -1.
func LabelIndex(clf TextClassifier, name string) int {
	for i, l := range clf.Labels() {
		if strings.EqualFold(l, name) {
			return i
		}
	}
	return -1
}
