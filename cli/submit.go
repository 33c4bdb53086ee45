package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/wardenlab/warden/client"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// params merges --params (a JSON object) with --param k=v flags (v read
// as JSON when it parses, else as a string); --param wins.
func params(obj string, kv []string) (map[string]any, error) {
	out := map[string]any{}
	if strings.TrimSpace(obj) != "" {
		if err := json.Unmarshal([]byte(obj), &out); err != nil {
			return nil, usagef("--params must be a JSON object: %v", err)
		}
	}
	for _, p := range kv {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("--param %q: want key=value", p)
		}
		var val any
		if err := json.Unmarshal([]byte(v), &val); err != nil {
			val = v
		}
		out[strings.TrimSpace(k)] = val
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// label is a label flag as JSON: a number stays a number (an index), any
// other text is a label name.
func label(v string) json.RawMessage {
	var n json.Number
	if err := json.Unmarshal([]byte(v), &n); err == nil {
		return json.RawMessage(v)
	}
	b, _ := json.Marshal(v)
	return b
}

// accepted prints a submission's answer, then waits when asked.
func accepted(ctx context.Context, c *client.Client, g *globalFlags, env Env, doWait bool, id, status string, raw client.Raw) error {
	if doWait {
		if !g.json {
			fmt.Fprintf(env.Stderr, "submitted %s\n", id)
		}
		return wait(ctx, c, g, env, id)
	}
	if g.json {
		return printRaw(env.Stdout, raw)
	}
	return printTable(env.Stdout, []string{"JOB_ID", "STATUS"}, [][]string{{id, status}})
}

func submitVerify(ctx context.Context, args []string, env Env) error {
	fs, g := newFlagSet("submit verify", env)
	callback := fs.String("callback", "", "webhook URL notified when the verification ends")
	doWait := fs.Bool("wait", false, "follow the job's progress until it ends")
	target, err := oneArg(fs, args, env, "FILE or URL")
	if err != nil {
		return err
	}
	isURL := strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://")
	if !isURL { // a missing file fails before any request
		if _, err := os.Stat(target); err != nil {
			return err
		}
	}
	c, err := newClient(ctx, g, env)
	if err != nil {
		return err
	}
	var (
		a   client.Accepted
		raw client.Raw
	)
	if isURL {
		a, raw, err = c.VerifyURL(ctx, target, *callback)
	} else {
		a, raw, err = c.VerifyFile(ctx, target, *callback)
	}
	if err != nil {
		return err
	}
	return accepted(ctx, c, g, env, *doWait, a.JobID, a.Status, raw)
}

func submitAttack(ctx context.Context, args []string, env Env) error {
	fs, g := newFlagSet("submit attack", env)
	var r client.AttackRequest
	fs.StringVar(&r.ModelID, "model", "", "model id (GET /v1/models)")
	fs.StringVar(&r.AttackMethodID, "method", "", "attack method id, e.g. attack_pgd (GET /v1/attacks)")
	image := fs.String("image", "", "an image file, sent base64-encoded (CV models)")
	text := fs.String("text", "", "a text input (NLP models)")
	input := fs.String("input", "", "input_data as JSON: an array of numbers, or a list of inputs")
	target := fs.String("target", "", "target label (name or index) for a targeted attack")
	var trueLabels, kv multiFlag
	fs.Var(&trueLabels, "true-label", "true label (name or index) of each input, repeated")
	fs.Var(&kv, "param", "an attack parameter key=value (value as JSON when it parses), repeated")
	obj := fs.String("params", "", "attack parameters as a JSON object")
	fs.StringVar(&r.CallbackURL, "callback", "", "webhook URL notified when the attack ends")
	doWait := fs.Bool("wait", false, "follow the job's progress until it ends")
	pos, err := parse(fs, args, env.Stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("submit attack takes no arguments (the input is --image, --text or --input)")
	}
	if r.ModelID == "" || r.AttackMethodID == "" {
		return usagef("--model and --method are required")
	}
	n := 0
	for _, s := range []string{*image, *text, *input} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return usagef("exactly one of --image, --text and --input is required")
	}
	switch {
	case *image != "":
		b, err := os.ReadFile(*image)
		if err != nil {
			return err
		}
		r.InputData, _ = json.Marshal(base64.StdEncoding.EncodeToString(b))
	case *text != "":
		r.InputData, _ = json.Marshal(*text)
	default:
		if !json.Valid([]byte(*input)) {
			return usagef("--input must be JSON (an array of numbers, or a list of inputs)")
		}
		r.InputData = json.RawMessage(*input)
	}
	if *target != "" {
		r.TargetLabel = label(*target)
	}
	for _, l := range trueLabels {
		r.TrueLabels = append(r.TrueLabels, label(l))
	}
	if r.AttackParameters, err = params(*obj, kv); err != nil {
		return err
	}
	c, err := authedClient(ctx, g, env)
	if err != nil {
		return err
	}
	a, raw, err := c.LaunchAttack(ctx, r)
	if err != nil {
		return err
	}
	return accepted(ctx, c, g, env, *doWait, a.AttackID, a.Status, raw)
}

func submitAnalysis(ctx context.Context, args []string, env Env) error {
	fs, g := newFlagSet("submit analysis", env)
	model := fs.String("model", "", "an existing registration's model_id: analyse its uploaded files again")
	task := fs.String("task", "", "task type of a new registration (IC, TC, TS, TSF, NLP, IS, OD)")
	analysis := fs.String("type", "", "analysis type: MEA, EVA…")
	modelZip := fs.String("model-zip", "", "a new registration's model zip")
	dataZip := fs.String("data-zip", "", "a new registration's data zip")
	labelZip := fs.String("label-zip", "", "a new registration's label zip")
	var files, kv multiFlag
	fs.Var(&files, "file", "another file of a new registration, name=path (e.g. clean_model_1=a.zip), repeated")
	fs.Var(&kv, "param", "an analysis parameter key=value (value as JSON when it parses), repeated")
	obj := fs.String("params", "", "analysis parameters as a JSON object, e.g. {\"query_budget\":2000}")
	callback := fs.String("callback", "", "webhook URL notified when the analysis ends")
	doWait := fs.Bool("wait", false, "follow the job's progress until it ends")
	pos, err := parse(fs, args, env.Stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("submit analysis takes no arguments")
	}
	p, err := params(*obj, kv)
	if err != nil {
		return err
	}
	paths := map[string]string{}
	for name, path := range map[string]string{"model": *modelZip, "data": *dataZip, "label": *labelZip} {
		if path != "" {
			paths[name] = path
		}
	}
	for _, f := range files {
		name, path, ok := strings.Cut(f, "=")
		if !ok || name == "" || path == "" {
			return usagef("--file %q: want name=path", f)
		}
		paths[name] = path
	}
	register := *model == ""
	switch {
	case !register && len(paths) > 0:
		return usagef("--model analyses an existing registration: leave out the zips")
	case register && (*task == "" || *analysis == "" || len(paths) == 0):
		return usagef("either --model REG_ID, or --task, --type and the files (--model-zip, --data-zip, --label-zip)")
	}
	for _, path := range paths { // a missing file fails before any request
		if _, err := os.Stat(path); err != nil {
			return err
		}
	}
	c, err := authedClient(ctx, g, env)
	if err != nil {
		return err
	}
	if !register {
		a, raw, err := c.StartAnalysis(ctx, client.AnalysisRequest{ModelID: *model, AnalysisType: *analysis, TaskType: *task, CallbackURL: *callback, Parameters: p})
		if err != nil {
			return err
		}
		return accepted(ctx, c, g, env, *doWait, a.AnalysisID, a.Status, raw)
	}
	reg, raw, err := c.Register(ctx, client.RegisterRequest{TaskType: *task, AnalysisType: *analysis, CallbackURL: *callback, Parameters: p})
	if err != nil {
		return err
	}
	for name := range reg.UploadURLs {
		if paths[name] == "" {
			return fmt.Errorf("registration %s needs the file %q: give it with --file %s=PATH", reg.ModelID, name, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(reg.UploadURLs)) {
		if _, err := c.Upload(ctx, reg.UploadURLs[name], paths[name]); err != nil {
			return fmt.Errorf("uploading %s (%s): %w", name, paths[name], err)
		}
		if !g.json {
			fmt.Fprintf(env.Stderr, "uploaded %s\n", name)
		}
	}
	if reg.AnalysisID == "" {
		return fmt.Errorf("registration %s: this server cannot run %s analyses yet (no analysis_id)", reg.ModelID, reg.AnalysisType)
	}
	return accepted(ctx, c, g, env, *doWait, reg.AnalysisID, client.StatusQueued, raw)
}
