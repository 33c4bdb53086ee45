package jobs_test

import (
	"encoding/json"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/jobs"
	"github.com/wardenlab/warden/records"
)

// declared lists every kind declared in jobs.go by its Spec.
var declared = []jobs.Spec{
	jobs.VerifyMedia.Spec,
	jobs.Probe.Spec,
	jobs.ValidateModel.Spec,
	jobs.Attack.Spec,
	jobs.Analysis.Spec,
}

func TestLookupFindsEveryKind(t *testing.T) {
	for _, s := range declared {
		got, ok := jobs.Lookup(s.Name)
		if !ok {
			t.Errorf("Lookup(%q): not found", s.Name)
			continue
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("Lookup(%q) = %+v, want %+v", s.Name, got, s)
		}
	}
	for _, name := range []string{"", "nope", "Probe", "PROBE", " probe"} {
		if s, ok := jobs.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %+v, want not found", name, s)
		}
	}
}

func TestAllListsEachKindOnceWithValidQueue(t *testing.T) {
	all := jobs.All()
	if len(all) != len(declared) {
		t.Fatalf("All() has %d kinds, want %d: %+v", len(all), len(declared), all)
	}
	seen := map[string]int{}
	for i, s := range all {
		seen[s.Name]++
		if i > 0 && all[i-1].Name >= s.Name {
			t.Errorf("All() not sorted by name: %q before %q", all[i-1].Name, s.Name)
		}
		if !slices.Contains(jobs.Queues, s.Queue) {
			t.Errorf("kind %q: queue %q is not one of %v", s.Name, s.Queue, jobs.Queues)
		}
		if s.Timeout <= 0 {
			t.Errorf("kind %q: timeout %v, want > 0", s.Name, s.Timeout)
		}
		if s.MaxRetry < 0 {
			t.Errorf("kind %q: max retry %d, want >= 0", s.Name, s.MaxRetry)
		}
		if s.Name == "" || len(s.Name) > 64 { // records.Job.Kind is size:64
			t.Errorf("kind name %q: want 1-64 characters", s.Name)
		}
	}
	for _, s := range declared {
		if seen[s.Name] != 1 {
			t.Errorf("All() lists %q %d times, want once", s.Name, seen[s.Name])
		}
	}
	// All returns a fresh slice: changing it does not change the registry.
	all[0].Queue = "mutated"
	if again := jobs.All(); again[0].Queue == "mutated" {
		t.Error("All() returned shared storage")
	}
}

func TestKindQueues(t *testing.T) {
	want := map[string]string{
		"verify_media":   jobs.QueueCPU,
		"probe":          jobs.QueueCPU,
		"model_validate": jobs.QueueCPU,
		"attack":         jobs.QueueGPU,
		"analysis":       jobs.QueueGPU,
	}
	for _, s := range declared {
		if q, ok := want[s.Name]; !ok {
			t.Errorf("unexpected kind %q", s.Name)
		} else if s.Queue != q {
			t.Errorf("kind %q on queue %q, want %q", s.Name, s.Queue, q)
		}
	}
}

func TestNewIDFormats(t *testing.T) {
	const uuidRE = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`
	cases := []struct {
		spec jobs.Spec
		re   string
	}{
		{jobs.VerifyMedia.Spec, uuidRE},
		{jobs.Probe.Spec, uuidRE},
		{jobs.ValidateModel.Spec, `^mjob_[0-9a-f]{32}$`},
		{jobs.Attack.Spec, `^atk_[0-9a-f]{24}$`},
	}
	for _, c := range cases {
		t.Run(c.spec.Name, func(t *testing.T) {
			re := regexp.MustCompile(c.re)
			seen := map[string]bool{}
			for range 2000 {
				id := c.spec.NewID()
				if !re.MatchString(id) {
					t.Fatalf("NewID() = %q, want %s", id, c.re)
				}
				if len(id) > 64 { // records.Job.ID is size:64 and the asynq TaskID
					t.Fatalf("NewID() = %q longer than 64", id)
				}
				if seen[id] {
					t.Fatalf("NewID() returned %q twice", id)
				}
				seen[id] = true
			}
		})
	}
	// A Spec copied out of Lookup makes ids in the same format.
	s, _ := jobs.Lookup("attack")
	if id := s.NewID(); !strings.HasPrefix(id, "atk_") || len(id) != 4+24 {
		t.Errorf("Lookup(attack).NewID() = %q", id)
	}
}

func TestSubmissionCarriesSpecAndInput(t *testing.T) {
	in := jobs.ProbeInput{HoldMS: 250}
	sub, err := jobs.Probe.Submission(in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sub.Kind, jobs.Probe.Spec) {
		t.Errorf("Kind = %+v, want %+v", sub.Kind, jobs.Probe.Spec)
	}
	if sub.ID != "" || sub.OrgID != "" || sub.CallbackURL != "" || !sub.Deadline.IsZero() || sub.Blobs != nil {
		t.Errorf("Submission sets more than Kind and Input: %+v", sub)
	}
	if sub.Input != `{"hold_ms":250}` {
		t.Errorf("Input = %s", sub.Input)
	}
	got, err := jobs.Probe.Input(sub.Input)
	if err != nil || got != in {
		t.Errorf("Input(%s) = %+v, %v; want %+v", sub.Input, got, err, in)
	}
}

// roundTripInput encodes in with the kind's Submission and decodes it with Input.
func roundTripInput[I, R any](t *testing.T, k jobs.Kind[I, R], in I) I {
	t.Helper()
	sub, err := k.Submission(in)
	if err != nil {
		t.Fatalf("%s: Submission: %v", k.Name, err)
	}
	if !json.Valid([]byte(sub.Input)) {
		t.Fatalf("%s: Input is not JSON: %s", k.Name, sub.Input)
	}
	out, err := k.Input(sub.Input)
	if err != nil {
		t.Fatalf("%s: Input(%s): %v", k.Name, sub.Input, err)
	}
	return out
}

// roundTripResult encodes r with EncodeResult and decodes it with Result.
func roundTripResult[I, R any](t *testing.T, k jobs.Kind[I, R], r R) (R, string) {
	t.Helper()
	enc, err := k.EncodeResult(r)
	if err != nil {
		t.Fatalf("%s: EncodeResult: %v", k.Name, err)
	}
	out, err := k.Result(enc)
	if err != nil {
		t.Fatalf("%s: Result(%s): %v", k.Name, enc, err)
	}
	return out, enc
}

func ptr[T any](v T) *T { return &v }

func TestInputRoundTrips(t *testing.T) {
	t.Run("verify_media", func(t *testing.T) {
		in := jobs.VerifyInput{Source: "url", URL: "https://example.com/a.jpg", ContentType: "image/jpeg", Size: 1234, BlobKey: "jobs/x/input"}
		if got := roundTripInput(t, jobs.VerifyMedia, in); got != in {
			t.Errorf("got %+v, want %+v", got, in)
		}
	})
	t.Run("probe", func(t *testing.T) {
		in := jobs.ProbeInput{HoldMS: jobs.MaxProbeHoldMS}
		if got := roundTripInput(t, jobs.Probe, in); got != in {
			t.Errorf("got %+v, want %+v", got, in)
		}
	})
	t.Run("model_validate", func(t *testing.T) {
		in := jobs.ValidateModelInput{ModelID: "mdl_0123456789abcdef0123"}
		if got := roundTripInput(t, jobs.ValidateModel, in); got != in {
			t.Errorf("got %+v, want %+v", got, in)
		}
	})
	t.Run("attack", func(t *testing.T) {
		in := jobs.AttackInput{
			ModelID:        "mdl_1",
			AttackMethodID: "fgsm",
			Params:         map[string]any{"epsilon": 0.03, "targeted": true, "norm": "linf"},
			Inputs:         []json.RawMessage{json.RawMessage(`[0,0.5,1]`), json.RawMessage(`"text input"`)},
			TrueLabels:     []int{3, 0},
			TargetLabel:    ptr(0), // index 0 must survive (not dropped as empty)
		}
		got := roundTripInput(t, jobs.Attack, in)
		if !reflect.DeepEqual(got, in) {
			t.Errorf("got %#v, want %#v", got, in)
		}
		// Without a target and true labels those fields are absent.
		sub, err := jobs.Attack.Submission(jobs.AttackInput{ModelID: "m", AttackMethodID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"target_label", "true_labels"} {
			if strings.Contains(sub.Input, k) {
				t.Errorf("empty %s encoded: %s", k, sub.Input)
			}
		}
		if got := roundTripInput(t, jobs.Attack, jobs.AttackInput{ModelID: "m"}); got.TargetLabel != nil {
			t.Errorf("TargetLabel = %v, want nil", *got.TargetLabel)
		}
	})
}

func TestValueJSON(t *testing.T) {
	cases := []struct {
		name string
		v    jobs.Value
		json string
	}{
		{"text", *jobs.TextValue("hello"), `"hello"`},
		{"empty text", *jobs.TextValue(""), `""`},
		{"text that looks like numbers", *jobs.TextValue("[1,2]"), `"[1,2]"`},
		{"numbers", *jobs.NumbersValue([]float32{0, 0.5, 1}), `[0,0.5,1]`},
		{"nil numbers", *jobs.NumbersValue(nil), `[]`},
		{"empty numbers", *jobs.NumbersValue([]float32{}), `[]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.json {
				t.Fatalf("Marshal = %s, want %s", b, c.json)
			}
			var back jobs.Value
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if back.IsText != c.v.IsText || back.Text != c.v.Text || len(back.Numbers) != len(c.v.Numbers) {
				t.Fatalf("round trip = %+v, want %+v", back, c.v)
			}
			for i := range back.Numbers {
				if back.Numbers[i] != c.v.Numbers[i] {
					t.Fatalf("round trip = %+v, want %+v", back, c.v)
				}
			}
		})
	}
	// Leading white space in front of a string is still a text.
	var v jobs.Value
	if err := v.UnmarshalJSON([]byte(" \n\t\"x\"")); err != nil || !v.IsText || v.Text != "x" {
		t.Errorf("UnmarshalJSON with leading space = %+v, %v", v, err)
	}
	for _, bad := range []string{`{}`, `true`, `["a"]`, `[1,"a"]`, `"unterminated`, `12`} {
		var v jobs.Value
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("Unmarshal(%s) = %+v, want an error", bad, v)
		}
	}
}

func sampleAttackResult() jobs.AttackResult {
	first := jobs.AttackSample{
		OriginalInput:         jobs.NumbersValue([]float32{0, 0.25, 1}),
		OriginalPrediction:    "cat",
		OriginalConfidence:    0.875,
		AdversarialExample:    jobs.NumbersValue([]float32{0.03125, 0.25, 0.96875}),
		AdversarialPrediction: "dog",
		AdversarialConfidence: 0.5,
		AttackSuccess:         true,
		Perturbation: jobs.Perturbation{
			LinfNorm:  ptr(float32(0.03125)),
			L2Norm:    ptr(float32(0.0625)),
			Artifacts: map[string]string{"original": "original_0.png", "adversarial": "adversarial_0.png"},
		},
	}
	second := jobs.AttackSample{
		OriginalInput:         jobs.TextValue("a fine movie"),
		OriginalPrediction:    "positive",
		OriginalConfidence:    0.75,
		AdversarialExample:    jobs.TextValue("a fine film"),
		AdversarialPrediction: "positive",
		AdversarialConfidence: 0.625,
		Perturbation: jobs.Perturbation{
			WordsChanged:        []attacks.WordChange{{Original: "movie", Adversarial: "film", Position: 2}},
			LevenshteinDistance: ptr(4),
		},
		Queries: ptr(int64(17)),
	}
	return jobs.AttackResult{
		AttackSample:        first,
		BatchSize:           2,
		BatchSuccessRate:    0.5,
		BatchResults:        []jobs.AttackSample{first, second},
		Queries:             42,
		GradientEvaluations: ptr(int64(10)),
		PerturbationSummary: &jobs.NormSummary{Linf: attacks.NormStats{Count: 1, Mean: 0.03125, Median: 0.03125, Max: 0.03125}},
		Metrics:             jobs.AttackMetrics{AttackTimeSeconds: 1.5, CPUUsageAvg: "12%", Device: "cpu", TorchThreads: 4},
		ModelID:             "mdl_1",
		AttackMethodID:      "fgsm",
	}
}

func TestAttackResultTopLevelShape(t *testing.T) {
	r := sampleAttackResult()
	enc, err := jobs.Attack.EncodeResult(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(enc), &doc); err != nil {
		t.Fatal(err)
	}
	// The first sample's fields are at the top level (spec 002), not
	// nested under the embedded struct's name.
	want := map[string]any{
		"original_prediction":    "cat",
		"original_confidence":    0.875,
		"adversarial_prediction": "dog",
		"adversarial_confidence": 0.5,
		"attack_success":         true,
		"batch_size":             float64(2),
		"batch_success_rate":     0.5,
		"queries":                float64(42), // the result's count, not a sample's
		"gradient_evaluations":   float64(10),
		"model_id":               "mdl_1",
		"attack_method_id":       "fgsm",
	}
	for k, v := range want {
		if !reflect.DeepEqual(doc[k], v) {
			t.Errorf("%s = %#v, want %#v", k, doc[k], v)
		}
	}
	for _, k := range []string{"AttackSample", "attack_sample", "Perturbation"} {
		if _, ok := doc[k]; ok {
			t.Errorf("unexpected key %q in %s", k, enc)
		}
	}
	if got, want := doc["original_input"], []any{0.0, 0.25, 1.0}; !reflect.DeepEqual(got, want) {
		t.Errorf("original_input = %#v, want %#v", got, want)
	}
	pd, ok := doc["perturbation_details"].(map[string]any)
	if !ok {
		t.Fatalf("perturbation_details = %#v, want an object", doc["perturbation_details"])
	}
	if pd["linf_norm"] != 0.03125 || pd["l2_norm"] != 0.0625 {
		t.Errorf("perturbation_details = %#v", pd)
	}
	if _, ok := pd["words_changed"]; ok {
		t.Errorf("image sample has words_changed: %#v", pd)
	}
	br, ok := doc["batch_results"].([]any)
	if !ok || len(br) != 2 {
		t.Fatalf("batch_results = %#v, want 2 samples", doc["batch_results"])
	}
	second := br[1].(map[string]any)
	if second["original_input"] != "a fine movie" || second["queries"] != float64(17) {
		t.Errorf("batch_results[1] = %#v", second)
	}
	wc := second["perturbation_details"].(map[string]any)["words_changed"].([]any)
	if len(wc) != 1 || wc[0].(map[string]any)["adversarial"] != "film" {
		t.Errorf("words_changed = %#v", wc)
	}
	if m, ok := doc["metrics"].(map[string]any); !ok || m["gpu_usage_avg"] != nil || m["device"] != "cpu" {
		t.Errorf("metrics = %#v (gpu_usage_avg must be null when not measured)", doc["metrics"])
	} else if _, present := m["gpu_usage_avg"]; !present {
		t.Errorf("metrics lacks gpu_usage_avg: %#v", m)
	}

	// A single input has no batch_results.
	one := r
	one.BatchSize, one.BatchResults = 1, nil
	enc1, err := jobs.Attack.EncodeResult(one)
	if err != nil {
		t.Fatal(err)
	}
	var doc1 map[string]any
	if err := json.Unmarshal([]byte(enc1), &doc1); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc1["batch_results"]; ok {
		t.Errorf("batch of one has batch_results: %s", enc1)
	}
	if doc1["batch_size"] != float64(1) || doc1["original_prediction"] != "cat" {
		t.Errorf("batch of one: %s", enc1)
	}
}

func TestResultRoundTrips(t *testing.T) {
	t.Run("attack", func(t *testing.T) {
		r := sampleAttackResult()
		got, enc := roundTripResult(t, jobs.Attack, r)
		// The first sample's own query count is hidden at the top level by
		// the result's (the outer field wins); everything else survives.
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip differs\n got %#v\nwant %#v\n(json %s)", got, r, enc)
		}
		if got.OriginalInput.IsText || !got.BatchResults[1].OriginalInput.IsText || got.BatchResults[1].OriginalInput.Text != "a fine movie" {
			t.Errorf("Value kinds lost: %+v / %+v", got.OriginalInput, got.BatchResults[1].OriginalInput)
		}
	})
	t.Run("attack text sample", func(t *testing.T) {
		r := jobs.AttackResult{AttackSample: jobs.AttackSample{OriginalInput: jobs.TextValue("x"), AdversarialExample: jobs.TextValue("y")}, BatchSize: 1}
		got, _ := roundTripResult(t, jobs.Attack, r)
		if got.OriginalInput == nil || !got.OriginalInput.IsText || got.OriginalInput.Text != "x" ||
			got.AdversarialExample == nil || !got.AdversarialExample.IsText || got.AdversarialExample.Text != "y" {
			t.Errorf("got %+v / %+v", got.OriginalInput, got.AdversarialExample)
		}
	})
	t.Run("verify_media", func(t *testing.T) {
		r := jobs.VerifyResult{Label: "ai_generated", Confidence: 0.91, Reasons: []string{"no c2pa", "spectral"},
			File: jobs.VerifiedFile{ContentType: "image/png", Size: 10, SHA256: strings.Repeat("ab", 32)}, MLError: "cnn unavailable"}
		r.Details.C2PA.Found = true
		r.Details.SensorPKI.Error = "no signature"
		got, _ := roundTripResult(t, jobs.VerifyMedia, r)
		if !reflect.DeepEqual(got, r) {
			t.Errorf("got %#v, want %#v", got, r)
		}
	})
	t.Run("probe", func(t *testing.T) {
		r := jobs.ProbeResult{WorkerHost: "w1", WorkerPID: 42, Attempt: 2, HeldMS: 100}
		if got, _ := roundTripResult(t, jobs.Probe, r); got != r {
			t.Errorf("got %+v, want %+v", got, r)
		}
	})
	t.Run("model_validate", func(t *testing.T) {
		r := jobs.ValidateModelResult{ModelID: "mdl_1", Status: records.ModelActive, NumClasses: 10,
			Metrics: map[string]any{"num_classes": float64(10), "input_size": []any{float64(3), float64(32), float64(32)}}, Device: "cpu"}
		got, _ := roundTripResult(t, jobs.ValidateModel, r)
		if !reflect.DeepEqual(got, r) {
			t.Errorf("got %#v, want %#v", got, r)
		}
	})
}

func TestDecodeIgnoresUnknownFields(t *testing.T) {
	// A newer API may queue inputs with fields an older worker lacks.
	in, err := jobs.Probe.Input(`{"hold_ms": 5, "added_later": {"nested": [1, 2]}, "another": null}`)
	if err != nil || in.HoldMS != 5 {
		t.Errorf("Probe.Input = %+v, %v", in, err)
	}
	a, err := jobs.Attack.Input(`{"model_id":"m","attack_method_id":"fgsm","attack_parameters":{},"inputs":[[1]],"future":true}`)
	if err != nil || a.ModelID != "m" || len(a.Inputs) != 1 {
		t.Errorf("Attack.Input = %+v, %v", a, err)
	}
	r, err := jobs.Attack.Result(`{"original_prediction":"cat","attack_success":true,"batch_size":1,` +
		`"perturbation_details":{"linf_norm":0.5,"new_norm":3},"new_top_level":"x","metrics":{"new_metric":1}}`)
	if err != nil {
		t.Fatalf("Attack.Result: %v", err)
	}
	if r.OriginalPrediction != "cat" || !r.AttackSuccess || r.BatchSize != 1 || r.Perturbation.LinfNorm == nil || *r.Perturbation.LinfNorm != 0.5 {
		t.Errorf("Attack.Result = %+v", r)
	}
	v, err := jobs.VerifyMedia.Result(`{"label":"authentic","details":{"c2pa":{"found":true,"unknown":1}},"extra":[]}`)
	if err != nil || v.Label != "authentic" || !v.Details.C2PA.Found {
		t.Errorf("VerifyMedia.Result = %+v, %v", v, err)
	}
	// A field the newer side dropped is simply zero.
	p, err := jobs.Probe.Result(`{"worker_host":"w1"}`)
	if err != nil || p.WorkerHost != "w1" || p.HeldMS != 0 {
		t.Errorf("Probe.Result = %+v, %v", p, err)
	}
}

func TestDecodeFailsOnTypeMismatch(t *testing.T) {
	cases := []struct {
		name string
		fn   func() error
	}{
		{"probe hold_ms string", func() error { _, err := jobs.Probe.Input(`{"hold_ms":"five"}`); return err }},
		{"probe not an object", func() error { _, err := jobs.Probe.Input(`[1,2]`); return err }},
		{"probe not json", func() error { _, err := jobs.Probe.Input(`hold_ms=5`); return err }},
		{"empty document", func() error { _, err := jobs.Probe.Input(``); return err }},
		{"truncated", func() error { _, err := jobs.Probe.Input(`{"hold_ms":5`); return err }},
		{"model id number", func() error { _, err := jobs.ValidateModel.Input(`{"model_id":7}`); return err }},
		{"attack inputs object", func() error { _, err := jobs.Attack.Input(`{"inputs":{"a":1}}`); return err }},
		{"attack target string", func() error { _, err := jobs.Attack.Input(`{"target_label":"cat"}`); return err }},
		{"attack success string", func() error { _, err := jobs.Attack.Result(`{"attack_success":"yes"}`); return err }},
		{"attack original_input object", func() error { _, err := jobs.Attack.Result(`{"original_input":{"a":1}}`); return err }},
		{"attack batch_size float", func() error { _, err := jobs.Attack.Result(`{"batch_size":1.5}`); return err }},
		{"attack batch_success_rate string", func() error { _, err := jobs.Attack.Result(`{"batch_success_rate":"half"}`); return err }},
		{"verify confidence string", func() error { _, err := jobs.VerifyMedia.Result(`{"confidence":"high"}`); return err }},
	}
	for _, c := range cases {
		err := c.fn()
		if err == nil {
			t.Errorf("%s: no error", c.name)
		} else if !strings.Contains(err.Error(), "jobs: decode") {
			t.Errorf("%s: error %q does not say it is the jobs codec", c.name, err)
		}
	}
}

func TestEncodeResultFailsOnNaN(t *testing.T) {
	// JSON has no NaN: the codec must answer an error, not write garbage.
	_, err := jobs.Attack.EncodeResult(jobs.AttackResult{BatchSuccessRate: math.NaN()})
	if err == nil {
		t.Fatal("EncodeResult with a NaN confidence: no error")
	}
	if !strings.Contains(err.Error(), "jobs: encode") {
		t.Errorf("error %q does not say it is the jobs codec", err)
	}
}

func summarizes[I, R any](k jobs.Kind[I, R]) bool {
	var r R
	_, ok := any(r).(jobs.Summarizer)
	return ok
}

func TestSummaries(t *testing.T) {
	for name, ok := range map[string]bool{
		"verify_media":   summarizes(jobs.VerifyMedia),
		"probe":          summarizes(jobs.Probe),
		"model_validate": summarizes(jobs.ValidateModel),
		"attack":         summarizes(jobs.Attack),
	} {
		if !ok {
			t.Errorf("%s result does not implement Summarizer", name)
		}
	}
	cases := []struct {
		r    jobs.Summarizer
		want string
	}{
		{jobs.VerifyResult{Label: "ai_generated"}, "ai_generated"},
		{jobs.VerifyResult{}, ""},
		{jobs.ProbeResult{}, "ok"},
		{jobs.ProbeResult{WorkerHost: "w"}, "ok"},
		{jobs.ValidateModelResult{Status: records.ModelActive}, "active"},
		{jobs.ValidateModelResult{Status: records.ModelFailed}, "failed"},
		{jobs.AttackResult{AttackSample: jobs.AttackSample{AttackSuccess: true}}, "fooled"},
		{jobs.AttackResult{}, "failed_to_fool"},
		// The summary is the first sample's, even when others succeeded.
		{jobs.AttackResult{BatchResults: []jobs.AttackSample{{}, {AttackSuccess: true}}, BatchSuccessRate: 0.5}, "failed_to_fool"},
	}
	for _, c := range cases {
		if got := c.r.Summary(); got != c.want {
			t.Errorf("%T%+v.Summary() = %q, want %q", c.r, c.r, got, c.want)
		}
	}
}

func TestScopeVisible(t *testing.T) {
	orgA, orgB := "org_a", "org_b"
	orgJob := records.Job{ID: "j1", Kind: "predict", OrgID: &orgA}
	anonJob := records.Job{ID: "j2", Kind: "verify_media"}
	emptyOrg := ""
	emptyOrgJob := records.Job{ID: "j3", Kind: "probe", OrgID: &emptyOrg} // must not match an anonymous caller
	cases := []struct {
		name  string
		scope jobs.Scope
		job   records.Job
		want  bool
	}{
		{"org job, same org", jobs.Scope{OrgID: orgA}, orgJob, true},
		{"org job, same org, anonymous allowed", jobs.Scope{OrgID: orgA, Anonymous: true}, orgJob, true},
		{"org job, other org", jobs.Scope{OrgID: orgB}, orgJob, false},
		{"org job, other org, anonymous allowed", jobs.Scope{OrgID: orgB, Anonymous: true}, orgJob, false},
		{"org job, anonymous caller", jobs.Scope{}, orgJob, false},
		{"org job, anonymous caller, anonymous allowed", jobs.Scope{Anonymous: true}, orgJob, false},
		{"anonymous job, Anonymous true", jobs.Scope{Anonymous: true}, anonJob, true},
		{"anonymous job, org caller with Anonymous true", jobs.Scope{OrgID: orgA, Anonymous: true}, anonJob, true},
		{"anonymous job, Anonymous false", jobs.Scope{}, anonJob, false},
		{"anonymous job, org caller, Anonymous false", jobs.Scope{OrgID: orgA}, anonJob, false},
		{"job with empty org id, anonymous caller", jobs.Scope{}, emptyOrgJob, false},
		{"job with empty org id, anonymous allowed", jobs.Scope{Anonymous: true}, emptyOrgJob, false},
		{"kind filter matches", jobs.Scope{OrgID: orgA, Kind: "predict"}, orgJob, true},
		{"kind filter differs", jobs.Scope{OrgID: orgA, Kind: "attack"}, orgJob, false},
		{"kind filter on anonymous job matches", jobs.Scope{Anonymous: true, Kind: "verify_media"}, anonJob, true},
		{"kind filter on anonymous job differs", jobs.Scope{Anonymous: true, Kind: "probe"}, anonJob, false},
		{"kind filter does not widen", jobs.Scope{OrgID: orgB, Kind: "predict"}, orgJob, false},
	}
	for _, c := range cases {
		if got := c.scope.Visible(c.job); got != c.want {
			t.Errorf("%s: Scope%+v.Visible(job org=%v kind=%s) = %v, want %v", c.name, c.scope, c.job.OrgID, c.job.Kind, got, c.want)
		}
	}
}

func TestAnalysisParamsDefaults(t *testing.T) {
	p := jobs.AnalysisParams{QueryBudget: 1000}.ApplyDefaults()
	if p.QueryBudget != 1000 || len(p.CurvePoints) != 6 || p.CurvePoints[5] != 1000 || p.CurvePoints[0] != 50 {
		t.Errorf("MEA defaults: %+v", p)
	}
	if p.Attack != "pgd" || p.Steps != jobs.DefaultPGDSteps || p.Samples != jobs.DefaultEVASamples || p.Seed != 1 || len(p.Epsilons) != len(jobs.DefaultEpsilons) {
		t.Errorf("EVA defaults: %+v", p)
	}
	kept := jobs.AnalysisParams{Epsilons: []float64{0.3}, Attack: "fgsm", Steps: 3, Samples: 7, Seed: 9, CurvePoints: []int{10}}.ApplyDefaults()
	if kept.Epsilons[0] != 0.3 || kept.Attack != "fgsm" || kept.Steps != 3 || kept.Samples != 7 || kept.Seed != 9 || len(kept.CurvePoints) != 1 {
		t.Errorf("given values not kept: %+v", kept)
	}
}
