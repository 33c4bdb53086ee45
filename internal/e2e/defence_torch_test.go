//go:build torch

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"math"
	"testing"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/attacks"
	"github.com/wardenlab/warden/worker/analysis"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/runner"
	"github.com/wardenlab/warden/worker/torch"
)

// digitsImage is one [1, 8, 8] digit in [0, 1] as a grayscale image.
func digitsImage(x []float32) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for i, v := range x {
		img.Pix[i] = uint8(math.Round(float64(v) * 255))
	}
	return img
}

// digitsPNG is one [1, 8, 8] digit in [0, 1] as a grayscale PNG.
func digitsPNG(t *testing.T, x []float32) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, digitsImage(x)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// digitsUpload is the digits' training split as IC data and label zips.
func digitsUpload(t *testing.T, d *demo.Dataset) (data, label []byte) {
	t.Helper()
	imgs := make([]uploadImage, d.N())
	for i := range imgs {
		name := fmt.Sprintf("d%04d.png", i)
		imgs[i] = uploadImage{name, digitsImage(d.Sample(i)), fmt.Sprintf("%s,%d\n", name, d.Y[i])}
	}
	return imageZips(t, "label.csv", "image,label\n", imgs)
}

// pgdVictim drives the digits CNN (loaded in the test process: it is the
// test's own model) for the attacks package.
type pgdVictim struct {
	analysis.Victim
}

func (pgdVictim) NumClasses() int { return 10 }

// TestAISDefenceEndToEnd: the digits CNN registered for EVA with its
// training digits; EVA runs, the defence analysis inherits its ε and
// builds the profile in a confined runner; the guarded endpoint, served by
// the worker's warm runner, answers the unseen test digits and flags at
// most 5 % of them, flags at least 80 % of PGD ε = 0.3 examples of them,
// and its stream monitor flags the client sending the adversarial examples.
func TestAISDefenceEndToEnd(t *testing.T) {
	dir := t.TempDir()
	m, err := demo.TrainDigits(dir)
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := demo.Digits()
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, true)
	org, other := s.org("ais-defence"), s.org("ais-defence-other")
	code, reg := s.postJSON("/api/ais/v1.5/model_registration/upload", map[string]any{"task_type": "IC", "analysis_type": "EVA",
		"parameters": map[string]any{"epsilons": []float64{0, 0.3}, "steps": 10, "samples": 50}}, withKey(org))
	if code != 200 {
		t.Fatalf("register: %d %v", code, reg)
	}
	id := reg["model_id"].(string)
	base := "/api/ais/v1.5/model_registration/" + id
	data, label := digitsUpload(t, train)
	urls := reg["upload_urls"].(map[string]any)
	for name, body := range map[string][]byte{"model": modelZip(t, m.ModelPath), "data": data, "label": label} {
		if code, r := s.aisUpload(t, urls[name], body); code != 200 {
			t.Fatalf("upload %s: %d %v", name, code, r)
		}
	}
	if st := waitAnalysis(t, s, org, reg["analysis_id"].(string)); st["status"] != "completed" {
		t.Fatalf("EVA: %v", st)
	}
	if code, r := s.postJSON(base+"/predict", map[string]any{"input_data": test.Sample(0)}, withKey(org)); code != 412 {
		t.Fatalf("predict before a profile: %d %v", code, r)
	}
	code, start := s.postJSON(base+"/defence", map[string]any{}, withKey(org))
	if code != 202 {
		t.Fatalf("POST defence: %d %v", code, start)
	}
	if st := waitAnalysis(t, s, org, start["analysis_id"].(string)); st["status"] != "completed" {
		t.Fatalf("defence analysis: %v", st)
	}
	code, doc := s.getJSON(base+"/defence", withKey(org))
	prof, _ := doc["profile"].(map[string]any)
	if code != 200 || prof == nil {
		t.Fatalf("GET defence: %d %v", code, doc)
	}
	t.Logf("profile calibration: %v", prof["calibration"])
	if code, _ := s.getJSON(base+"/defence/profile.json", withKey(org)); code != 200 {
		t.Fatalf("profile.json: %d", code)
	}
	if code, _ := s.getJSON(base+"/defence/profile.json", withKey(other)); code != 404 {
		t.Errorf("another org reads the profile: %d", code)
	}

	// Clean test digits: inputs the checks fire on.
	inputFlagged := func(r map[string]any) (bool, []string) {
		d, _ := r["defence"].(map[string]any)
		checks, _ := d["checks"].([]any)
		var fired []string
		input := false
		for _, c := range checks {
			c := c.(map[string]any)
			if c["fired"] == true {
				fired = append(fired, c["name"].(string))
				if c["name"] != "prada" && c["name"] != "ood_rate" {
					input = true
				}
			}
		}
		return input, fired
	}
	cleanFlags := 0
	for i := 0; i < test.N(); i++ {
		code, r := s.postJSON(base+"/predict", map[string]any{"input_data": test.Sample(i)}, withKey(org))
		if code != 200 {
			t.Fatalf("clean digit %d: %d %v", i, code, r)
		}
		if f, _ := inputFlagged(r); f {
			cleanFlags++
		}
		if d := r["defence"].(map[string]any); d["stream"].(map[string]any)["flagged_at"] != float64(0) {
			t.Fatalf("a stream of clean test digits flagged at query %d: %v", i+1, d)
		}
	}
	// An image body goes the same way.
	img := base64.StdEncoding.EncodeToString(digitsPNG(t, test.Sample(1)))
	if code, r := s.postJSON(base+"/predict", map[string]any{"image": img}, withKey(org)); code != 200 || r["prediction"] != fmt.Sprint(test.Y[1]) {
		t.Errorf("image body: %d %v", code, r)
	}

	// PGD ε = 0.3 on the test digits, crafted with the model's gradients here.
	ds := &ais.Dataset{Task: ais.TaskIC, X: attacks.Batch{Data: test.X, Shape: []int{test.N(), 1, 8, 8}}}
	v, closeModel, err := runner.LoadVictim(m.ModelPath, ds, torch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer closeModel()
	labels := make([]int, test.N())
	for i, y := range test.Y {
		labels[i] = int(y)
	}
	res, err := attacks.PGD(context.Background(), pgdVictim{v}, attacks.Input{X: ds.X, Labels: labels},
		attacks.PGDParams{Common: attacks.Common{ClipMin: 0, ClipMax: 1, TargetLabel: -1, Seed: 1}, Norm: "inf", Eps: 0.3, EpsStep: 0.075, MaxIter: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fooled, caught, streamAt := 0, 0, 0
	for i := 0; i < test.N(); i++ {
		code, r := s.postJSON(base+"/predict", map[string]any{"input_data": res.Adversarial.Sample(i)}, withKey(org))
		if code != 200 {
			t.Fatalf("adversarial digit %d: %d %v", i, code, r)
		}
		if r["prediction"] == fmt.Sprint(test.Y[i]) {
			continue // not adversarial
		}
		fooled++
		if f, _ := inputFlagged(r); f {
			caught++
		}
		if at := r["defence"].(map[string]any)["stream"].(map[string]any)["flagged_at"].(float64); at > 0 && streamAt == 0 {
			streamAt = int(at)
		}
	}
	fp, det := float64(cleanFlags)/float64(test.N()), float64(caught)/float64(max(fooled, 1))
	t.Logf("guarded endpoint: %d of %d clean test digits flagged (%.3f); %d of %d PGD ε=0.3 examples flagged (%.3f); stream flagged at query %d (clean queries %d)",
		cleanFlags, test.N(), fp, caught, fooled, det, streamAt, test.N()+1)
	if fp > 0.05 || fooled < 100 || det < 0.8 {
		t.Errorf("false positives %.3f, detection %.3f of %d", fp, det, fooled)
	}
	if streamAt <= test.N()+1 {
		t.Errorf("the stream of adversarial queries was not flagged (%d)", streamAt)
	}
	if code, r := s.postJSON(base+"/predict", map[string]any{"input_data": test.Sample(0)}, withKey(other)); code != 404 {
		t.Errorf("another org predicts: %d %v", code, r)
	}
}
