//go:build torch

package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenlab/warden/internal/reftorch"

	"github.com/wardenlab/warden/ais"
	"github.com/wardenlab/warden/internal/badnets"
	"github.com/wardenlab/warden/internal/testenv"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/torch"
)

// aisVictims builds one victim model per task type for the example
// uploads (ais.Example): classifiers trained here with the engine on the
// examples themselves (IC, TC, TS), the rest scripted by
// testdata/ais_victims.py. Paths by task type.
func aisVictims(t *testing.T) map[string]string {
	t.Helper()
	reftorch.Need(t)
	dir := t.TempDir()
	script := filepath.Join(testenv.RepoRoot(), "internal", "e2e", "testdata", "ais_victims.py")
	if out, err := exec.Command("/usr/bin/python3", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("build victims: %v\n%s", err, out)
	}
	paths := map[string]string{ais.TaskIS: filepath.Join(dir, "is.pt"), ais.TaskOD: filepath.Join(dir, "od.pt"),
		ais.TaskTSF: filepath.Join(dir, "tsf.pt"), ais.TaskNLP: filepath.Join(dir, "nlp.pt")}
	for _, task := range []string{ais.TaskIC, ais.TaskTC, ais.TaskTS} {
		ds := exampleDataset(t, task)
		ys := make([]int64, len(ds.Labels))
		for i, l := range ds.Labels {
			ys[i] = int64(l)
		}
		shape := make([]int64, len(ds.X.Shape)-1)
		for i, d := range ds.X.Shape[1:] {
			shape[i] = int64(d)
		}
		path := filepath.Join(dir, strings.ToLower(task)+".pt")
		var err error
		if task == ais.TaskIC {
			_, err = torch.TrainCNN(ds.X.Data, ys, shape, 10, torch.TrainConfig{Hidden: []int64{8, 16}, Epochs: 40, Seed: 2}, path)
		} else {
			_, err = torch.TrainMLP(ds.X.Data, ys, shape, int64(len(ds.Classes)), torch.TrainConfig{Hidden: []int64{16}, Epochs: 60, Seed: 2}, path)
		}
		if err != nil {
			t.Fatalf("train the %s victim: %v", task, err)
		}
		paths[task] = path
	}
	return paths
}

// exampleDataset decodes a task type's example upload.
func exampleDataset(t *testing.T, task string) *ais.Dataset {
	t.Helper()
	data, label := example(t, task, ais.FileData), example(t, task, ais.FileLabel)
	ds, err := ais.Decode(context.Background(), task, bytes.NewReader(data), bytes.NewReader(label), int64(len(data)), int64(len(label)), ais.DefaultDecodeLimits)
	if err != nil {
		t.Fatalf("decode the %s example: %v", task, err)
	}
	return ds
}

func example(t *testing.T, task, file string) []byte {
	t.Helper()
	b, err := ais.Example(task, file)
	if err != nil {
		t.Fatalf("example %s %s: %v", task, file, err)
	}
	return b
}

// blobScenes are OD data and label zips built here for the scripted
// detector (testdata/ais_victims.py: a 5×5 grid of 8×8 cells scored by
// their ink, one class): 20 scenes of 40×40 with two grey squares on the
// grid, faint enough that a bounded perturbation can hide them.
// uploadImage is one image of an IC or OD upload: its file name under
// images/, the image, and its line(s) of the label CSV.
type uploadImage struct {
	name string
	img  image.Image
	csv  string
}

// imageZips packs images as PNGs into a data zip and their label lines,
// under header, into a label zip named labelFile.
func imageZips(t testing.TB, labelFile, header string, imgs []uploadImage) (data, label []byte) {
	t.Helper()
	var dbuf, lbuf bytes.Buffer
	dz, lz := zip.NewWriter(&dbuf), zip.NewWriter(&lbuf)
	csv := header
	for _, u := range imgs {
		f, err := dz.Create("images/" + u.name)
		if err == nil {
			err = png.Encode(f, u.img)
		}
		if err != nil {
			t.Fatal(err)
		}
		csv += u.csv
	}
	f, err := lz.Create(labelFile)
	if err == nil {
		_, err = f.Write([]byte(csv))
	}
	for _, z := range []*zip.Writer{dz, lz} {
		if cerr := z.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return dbuf.Bytes(), lbuf.Bytes()
}

func blobScenes(t *testing.T) (data, label []byte) {
	t.Helper()
	var scenes []uploadImage
	for i := 0; i < 20; i++ {
		img := image.NewGray(image.Rect(0, 0, 40, 40))
		u := uploadImage{name: fmt.Sprintf("scene_%02d.png", i), img: img}
		for k, cell := range []int{(i * 7) % 25, (i*7 + 12) % 25} {
			x0, y0 := (cell%5)*8, (cell/5)*8
			v := uint8(80 + 10*((i+k)%4))
			for y := y0; y < y0+8; y++ {
				for x := x0; x < x0+8; x++ {
					img.Pix[y*img.Stride+x] = v
				}
			}
			u.csv += fmt.Sprintf("%s,%d,%d,%d,%d,0\n", u.name, x0, y0, x0+8, y0+8)
		}
		scenes = append(scenes, u)
	}
	return imageZips(t, "boxes.csv", "image,x_min,y_min,x_max,y_max,label\n", scenes)
}

// poisonedDigits is an IC upload with a BadNets backdoor: the 1,797 demo
// digits as PNGs, 30 % of the sevens with a 2×2 white square in the
// bottom-right corner and labelled 4, and a CNN trained on them (as
// decoded, so that it saw what the runner reads) with torch.Fit.
func poisonedDigits(t *testing.T) (data, label []byte, model string) {
	t.Helper()
	train, test, err := demo.Digits()
	if err != nil {
		t.Fatal(err)
	}
	var imgs []uploadImage
	sevens := 0
	for _, d := range []*demo.Dataset{train, test} {
		for i := 0; i < d.N(); i++ {
			px, y := d.Sample(i), int(d.Y[i])
			img := image.NewGray(image.Rect(0, 0, 8, 8))
			for p, v := range px {
				img.Pix[(p/8)*img.Stride+p%8] = uint8(v*255 + 0.5)
			}
			if y == 7 {
				if sevens%10 < 3 {
					for _, p := range []int{6*8 + 6, 6*8 + 7, 7*8 + 6, 7*8 + 7} {
						img.Pix[(p/8)*img.Stride+p%8] = 255
					}
					y = 4
				}
				sevens++
			}
			name := fmt.Sprintf("digit_%04d.png", len(imgs))
			imgs = append(imgs, uploadImage{name, img, fmt.Sprintf("%s,%d\n", name, y)})
		}
	}
	data, label = imageZips(t, "labels.csv", "file,label\n", imgs)
	ds, err := ais.Decode(context.Background(), ais.TaskIC, bytes.NewReader(data), bytes.NewReader(label), int64(len(data)), int64(len(label)), ais.DefaultDecodeLimits)
	if err != nil {
		t.Fatal(err)
	}
	ys := make([]int64, len(ds.Labels))
	for i, l := range ds.Labels {
		ys[i] = int64(l)
	}
	model = filepath.Join(t.TempDir(), "poisoned.pt")
	if _, err := torch.Fit(context.Background(), torch.FitSpec{Arch: torch.ArchCNN, InShape: []int64{1, 8, 8}, Out: 10, Loss: torch.LossCE, Config: demo.DigitsConfig},
		torch.FitData{X: ds.X.Data, N: ds.N(), Labels: ys}, model); err != nil {
		t.Fatal(err)
	}
	return data, label, model
}

// modelZip is a model upload: the TorchScript file as model.pt in a zip.
func modelZip(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, _ := w.Create("model.pt")
	f.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// aisUpload PUTs a file to its signed upload URL.
func (s *stack) aisUpload(t *testing.T, raw any, body []byte) (int, map[string]any) {
	t.Helper()
	u, err := url.Parse(fmt.Sprint(raw))
	if err != nil {
		t.Fatalf("upload URL %v: %v", raw, err)
	}
	code, m, _ := s.do("PUT", u.RequestURI(), bytes.NewReader(body), "application/zip")
	return code, m
}

func waitAnalysis(t *testing.T, s *stack, creds storage.NewOrgCredentials, id string) map[string]any {
	t.Helper()
	var m map[string]any
	testenv.Eventually(t, 5*time.Minute, "analysis "+id+" to end", func() bool {
		_, m = s.getJSON("/api/ais/v1.5/analyses/"+id, withKey(creds))
		return m["status"] == "completed" || m["status"] == "failed" || m["status"] == "cancelled"
	})
	return m
}

// aisPair is one task and analysis with its parameters.
type aisPair struct {
	task, analysis string
	params         map[string]any
}

// aisPairs are the spec's offered pairs this version runs, with small
// parameters so the test stays quick.
var aisPairs = []aisPair{
	{"IC", "MEA", map[string]any{"query_budget": 300}},
	{"IC", "EVA", map[string]any{"epsilons": []float64{0, 0.1, 0.3}, "steps": 5, "samples": 20}},
	{"IS", "MEA", map[string]any{"query_budget": 120}},
	{"TC", "MEA", map[string]any{"query_budget": 200}},
	{"TC", "EVA", map[string]any{"epsilons": []float64{0, 0.1, 0.3}, "steps": 5, "samples": 20}},
	{"TSF", "MEA", map[string]any{"query_budget": 200}},
	{"NLP", "MEA", map[string]any{"query_budget": 150}},
	{"TS", "MEA", map[string]any{"query_budget": 200}},
	{"OD", "EVA", map[string]any{"epsilons": []float64{0, 0.1, 0.3}, "steps": 5, "samples": 10}},
	{"IC", "model-poisoning", map[string]any{"trigger_steps": 100, "samples": 150}},
	{"IC", "data-poisoning", map[string]any{}}, // BadNets digits (poisonedDigits), must be found
	{"TC", "data-poisoning", map[string]any{}}, // the iris example and its victim
}

// badnetsUpload is the model-poisoning pair's files: the BadNets-backdoored
// digits CNN, the two clean references (internal/badnets) and the
// held-out digits enlarged to 16×16 as PNGs with their labels.
func badnetsUpload(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := badnets.Models(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	x, y, _, err := badnets.HeldOut()
	if err != nil {
		t.Fatal(err)
	}
	var imgs []uploadImage
	const px = badnets.Side * badnets.Side
	for i, l := range y {
		img := image.NewGray(image.Rect(0, 0, badnets.Side, badnets.Side))
		for k := range img.Pix {
			img.Pix[k] = uint8(x[i*px+k]*255 + 0.5)
		}
		name := fmt.Sprintf("digit_%03d.png", i)
		imgs = append(imgs, uploadImage{name, img, fmt.Sprintf("%s,%d\n", name, l)})
	}
	data, label := imageZips(t, "labels.csv", "file,label\n", imgs)
	return map[string][]byte{"model": modelZip(t, paths["backdoored"]), "data": data, "label": label,
		"clean_model_1": modelZip(t, paths["ref1"]), "clean_model_2": modelZip(t, paths["ref2"])}
}

// TestAISAnalysesEndToEnd: for every offered pair, through HTTP and a real
// worker whose confined runners do the work: register, upload the three
// zips (the example data and label, a victim model; for model poisoning a
// BadNets-backdoored CNN, its data and the two clean models, which must
// flag the backdoor's target), the analysis starts
// with the last upload and completes; its report has a verdict with its
// definition, metrics, a curve, an HTML page with SVG plots, and its files
// download (an MEA surrogate loads as TorchScript and predicts). One
// analysis sends a signed analysis_completed webhook; another org sees
// nothing.
func TestAISAnalysesEndToEnd(t *testing.T) {
	victims := aisVictims(t)
	poisonData, poisonLabel, poisonModel := poisonedDigits(t)
	s := newStack(t, true)
	org, other := s.org("ais-e2e"), s.org("ais-e2e-other")
	rcv := newReceiver(t, org.WebhookSecret)
	ids := map[string]string{}
	// The poisoning analyses, the longest, run after the others and
	// alone on the worker, so that on a small machine their runners do not
	// slow the others past their wait (with all pairs at once IC-MEA missed
	// its 5-minute wait in 3 of 3 runs on 2 cores).
	var early, late []aisPair
	for _, p := range aisPairs {
		if strings.HasSuffix(p.analysis, "poisoning") {
			late = append(late, p)
		} else {
			early = append(early, p)
		}
	}
	runPairs := func(pairs []aisPair) {
		for _, p := range pairs {
			body := map[string]any{"task_type": p.task, "analysis_type": p.analysis, "parameters": p.params}
			if p.task == "IC" && p.analysis == "MEA" {
				body["callback_url"] = rcv.srv.URL
			}
			code, reg := s.postJSON("/api/ais/v1.5/model_registration/upload", body, withKey(org))
			if code != 200 {
				t.Fatalf("%s-%s register: %d %v", p.task, p.analysis, code, reg)
			}
			urls := reg["upload_urls"].(map[string]any)
			files := map[string][]byte{"model": modelZip(t, victims[p.task]), "data": example(t, p.task, "data"), "label": example(t, p.task, "label")}
			names := []string{"model", "data", "label"}
			switch {
			case p.task == "OD":
				files["data"], files["label"] = blobScenes(t)
			case p.analysis == "model-poisoning":
				files = badnetsUpload(t)
				names = append(names, "clean_model_1", "clean_model_2")
			}
			if p.task == "IC" && p.analysis == "data-poisoning" {
				files["model"], files["data"], files["label"] = modelZip(t, poisonModel), poisonData, poisonLabel
			}
			var last map[string]any
			for _, name := range names {
				code, m := s.aisUpload(t, urls[name], files[name])
				if code != 200 {
					t.Fatalf("%s-%s upload %s: %d %v", p.task, p.analysis, name, code, m)
				}
				last = m
			}
			if last["analysis_id"] != reg["analysis_id"] || last["analysis_id"] == nil {
				t.Fatalf("%s-%s: the last upload started %v, the registration named %v", p.task, p.analysis, last["analysis_id"], reg["analysis_id"])
			}
			ids[p.task+"-"+p.analysis] = reg["analysis_id"].(string)
		}
		for _, p := range pairs {
			pair := p.task + "-" + p.analysis
			id := ids[pair]
			st := waitAnalysis(t, s, org, id)
			if st["status"] != "completed" {
				t.Errorf("%s: %v", pair, st)
				continue
			}
			code, rep := s.getJSON("/api/ais/v1.5/analyses/"+id+"/report", withKey(org))
			if code != 200 {
				t.Errorf("%s report: %d %v", pair, code, rep)
				continue
			}
			verdict, _ := rep["verdict"].(map[string]any)
			metrics, _ := rep["metrics"].([]any)
			curves, _ := rep["curves"].([]any)
			if verdict["definition"] == "" || verdict["severity"] == nil || len(metrics) == 0 || len(curves) == 0 || rep["task_type"] != p.task {
				t.Errorf("%s report lacks verdict, metrics or curves: %v", pair, rep)
			}
			t.Logf("%s: %v — %v", pair, verdict["severity"], verdict["summary"])
			req, _ := http.NewRequest("GET", s.srv.URL+"/api/ais/v1.5/analyses/"+id+"/report.html", nil)
			withKey(org)(req)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var page bytes.Buffer
			page.ReadFrom(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !strings.Contains(page.String(), "<svg") || !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
				t.Errorf("%s report.html: %d %s %.200s", pair, res.StatusCode, res.Header.Get("Content-Type"), page.String())
			}
			files, _ := rep["files"].(map[string]any)
			for name, link := range files {
				u, _ := url.Parse(link.(string))
				req, _ := http.NewRequest("GET", s.srv.URL+u.RequestURI(), nil)
				withKey(org)(req)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var b bytes.Buffer
				b.ReadFrom(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || b.Len() == 0 {
					t.Errorf("%s file %s: %d", pair, name, res.StatusCode)
				}
				if name == "surrogate.pt" {
					checkSurrogate(t, pair, b.Bytes())
				}
			}
			if p.analysis == "MEA" && files["surrogate.pt"] == nil {
				t.Errorf("%s: no surrogate among the files %v", pair, files)
			}
			if p.analysis == "model-poisoning" {
				target := -2.0
				for _, m := range metrics {
					if m, _ := m.(map[string]any); m["name"] == "suspected_target" {
						target, _ = m["value"].(float64)
					}
				}
				if verdict["vulnerable"] != true || target != badnets.Target || files["mpois_trigger.json"] == nil || files["mpois_class_7_stamped.png"] == nil {
					t.Errorf("%s: the backdoored CNN is not flagged with target %d: verdict %v, suspected target %v, files %v", pair, badnets.Target, verdict, target, files)
				}
			}
			if p.analysis == "data-poisoning" && files["dpois_suspected_rows.csv"] == nil {
				t.Errorf("%s: no suspected-rows file among %v", pair, files)
			}
			if pair == "IC-data-poisoning" && (verdict["vulnerable"] != true || !strings.Contains(page.String(), "small cluster (suspected)")) {
				t.Errorf("%s: the planted backdoor is not found: %v", pair, verdict)
			}
			if code, m := s.getJSON("/api/ais/v1.5/analyses/"+id+"/report", withKey(other)); code != 404 {
				t.Errorf("%s: another org reads the report: %d %v", pair, code, m)
			}
		}
	}
	runPairs(early)
	for _, p := range late {
		runPairs([]aisPair{p})
	}
	testenv.Eventually(t, 30*time.Second, "signed analysis webhook", func() bool { return len(rcv.received()) == 1 })
	ev := rcv.received()[0]
	if ev["event_type"] != "analysis_completed" || ev["analysis_id"] != ids["IC-MEA"] || ev["verdict"] == nil ||
		!strings.HasSuffix(fmt.Sprint(ev["result_url"]), "/api/ais/v1.5/analyses/"+ids["IC-MEA"]+"/report") {
		t.Errorf("event %v", ev)
	}
	if len(rcv.bad) != 0 {
		t.Errorf("signature failures: %v", rcv.bad)
	}
}

var loadMu sync.Mutex

// checkSurrogate loads a downloaded surrogate as TorchScript.
func checkSurrogate(t *testing.T, pair string, b []byte) {
	t.Helper()
	loadMu.Lock()
	defer loadMu.Unlock()
	path := filepath.Join(t.TempDir(), "surrogate.pt")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := torch.LoadModule(path, torch.CPU)
	if err != nil {
		t.Errorf("%s surrogate does not load: %v", pair, err)
		return
	}
	m.Close()
}
