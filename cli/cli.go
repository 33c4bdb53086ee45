// Package cli is the client side of the warden binary: `warden submit
// verify|attack|analysis`, `warden jobs list|get|cancel` and `warden
// webhooks deliveries`, over the typed API client of package client. It
// reads no server configuration: credentials come from flags, the
// WARDEN_CLIENT_* environment or a config file.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wardenlab/warden/client"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitError       = 1   // a request failed (network, API error), a file is missing…
	ExitUsage       = 2   // wrong flags or arguments
	ExitJobFailed   = 3   // --wait: the job ended failed or cancelled
	ExitAuth        = 4   // the API refused the credentials (401) or their role (403)
	ExitInterrupted = 130 // --wait: Ctrl-C stopped waiting; the job goes on
)

// Usage lists the client commands.
const Usage = `client commands (credentials: --url, --org-id, --api-key or --token; env WARDEN_CLIENT_URL,
WARDEN_CLIENT_ORG_ID, WARDEN_CLIENT_API_KEY, WARDEN_CLIENT_TOKEN; or ~/.config/warden/config.json):
  submit verify FILE|URL [--callback URL] [--wait]
  submit attack --model ID --method ID (--image FILE | --text S | --input JSON)
                [--target LABEL] [--param k=v]... [--params JSON] [--wait]
  submit analysis (--model REG_ID | --task T --model-zip F --data-zip F --label-zip F)
                --type MEA|EVA [--param k=v]... [--params JSON] [--wait]
  jobs list [--kind K] [--status S] [--limit N] [--offset N]
  jobs get JOB_ID [--wait]
  jobs cancel JOB_ID
  webhooks deliveries [--job JOB_ID] [--limit N] [--offset N]
  every command takes --json (the API's JSON instead of a table)
`

// Handles reports whether cmd is a client command (cmd/warden runs those
// before loading any server configuration).
func Handles(cmd string) bool {
	return cmd == "submit" || cmd == "jobs" || cmd == "webhooks"
}

// Env is what a command runs with.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// TTY says Stderr is a terminal: --wait draws a progress bar there
	// instead of printing a line per change.
	TTY     bool
	HTTP    *http.Client   // nil: the client's default
	Backoff client.Backoff // zero: client.DefaultBackoff
}

// usageError is a command line mistake (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// jobEnded is a waited-for job that did not complete (exit 3).
type jobEnded struct{ job client.Job }

func (e jobEnded) Error() string {
	msg := "job " + e.job.JobID + " " + e.job.Status
	if e.job.Error != nil && *e.job.Error != "" {
		msg += ": " + *e.job.Error
	}
	return msg
}

// interrupted is a wait that Ctrl-C stopped (exit 130).
type interrupted struct{ jobID string }

func (e interrupted) Error() string {
	return "stopped waiting; job " + e.jobID + " goes on (warden jobs get " + e.jobID + ", warden jobs cancel " + e.jobID + ")"
}

// Run runs a client command (args[0] is submit, jobs or webhooks) and
// returns the process's exit code; errors are printed on one line to
// Stderr.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	err := dispatch(ctx, args, env)
	if err == nil || errors.Is(err, flag.ErrHelp) { // -h printed the flags
		return ExitOK
	}
	code := ExitError
	var (
		ue usageError
		je jobEnded
		ie interrupted
		ae *client.Error
	)
	switch {
	case errors.As(err, &ue):
		code = ExitUsage
	case errors.As(err, &je):
		code = ExitJobFailed
	case errors.As(err, &ie):
		code = ExitInterrupted
	case errors.As(err, &ae) && ae.Unauthorized():
		code = ExitAuth
		err = fmt.Errorf("%w; check the credentials (--api-key and --org-id, --token, WARDEN_CLIENT_* or the config file)", err)
	}
	// The command's name only: its flags may hold an API key.
	slog.Debug("warden client command failed", "command", strings.Join(args[:min(2, len(args))], " "), "err", err)
	fmt.Fprintln(env.Stderr, "error:", err)
	if code == ExitUsage {
		fmt.Fprint(env.Stderr, Usage)
	}
	return code
}

func dispatch(ctx context.Context, args []string, env Env) error {
	if len(args) < 2 {
		return usagef("a subcommand is required")
	}
	cmd := args[0] + " " + args[1]
	rest := args[2:]
	switch cmd {
	case "submit verify":
		return submitVerify(ctx, rest, env)
	case "submit attack":
		return submitAttack(ctx, rest, env)
	case "submit analysis":
		return submitAnalysis(ctx, rest, env)
	case "jobs list":
		return jobsList(ctx, rest, env)
	case "jobs get":
		return jobsGet(ctx, rest, env)
	case "jobs cancel":
		return jobsCancel(ctx, rest, env)
	case "webhooks deliveries":
		return webhookDeliveries(ctx, rest, env)
	}
	return usagef("unknown command %q", cmd)
}

// globalFlags are the flags every command takes.
type globalFlags struct {
	url, orgID, apiKey, token, config string
	json                              bool
	timeout                           time.Duration
}

func newFlagSet(name string, env Env) (*flag.FlagSet, *globalFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Run prints one error line; parse prints the flags for -h
	fs.Usage = func() {}
	g := &globalFlags{}
	fs.StringVar(&g.url, "url", "", "API base URL (env "+EnvURL+"; default "+DefaultURL+")")
	fs.StringVar(&g.orgID, "org-id", "", "org id sent with the API key (env "+EnvOrgID+")")
	fs.StringVar(&g.apiKey, "api-key", "", "API key (env "+EnvAPIKey+")")
	fs.StringVar(&g.token, "token", "", "OAuth2 access token, instead of an API key (env "+EnvToken+")")
	fs.StringVar(&g.config, "config", "", "config file (env "+EnvConfig+"; default ~/.config/warden/config.json)")
	fs.BoolVar(&g.json, "json", false, "print the API's JSON instead of a table")
	fs.DurationVar(&g.timeout, "timeout", 3*time.Minute, "timeout of each HTTP request (an upload, or a download Warden makes, can take minutes)")
	return fs, g
}

// parse parses flags and positional arguments in any order; -h prints
// the flags on stderr.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stderr)
				fmt.Fprintf(stderr, "usage of warden %s:\n", fs.Name())
				fs.PrintDefaults()
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newClient builds the API client from the resolved credentials; an
// OAuth2 client's id and secret are exchanged for a token first.
func newClient(ctx context.Context, g *globalFlags, env Env) (*client.Client, error) {
	cr, err := resolve(g, env.Getenv)
	if err != nil {
		return nil, err
	}
	hc := env.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: g.timeout}
	}
	c := &client.Client{BaseURL: cr.URL, OrgID: cr.OrgID, APIKey: cr.APIKey, Token: cr.Token, HTTP: hc}
	if c.Token == "" && c.APIKey == "" && cr.ClientID != "" {
		if c.Token, err = c.AccessToken(ctx, cr.ClientID, cr.ClientSecret); err != nil {
			return nil, fmt.Errorf("exchanging the OAuth2 client for a token: %w", err)
		}
	}
	return c, nil
}

// authedClient is newClient for a command that needs credentials: one
// without them is refused before it asks the API.
func authedClient(ctx context.Context, g *globalFlags, env Env) (*client.Client, error) {
	c, err := newClient(ctx, g, env)
	if err != nil {
		return nil, err
	}
	if !c.Authenticated() {
		return nil, fmt.Errorf("no credentials: set --api-key and --org-id (%s, %s), --token (%s) or a config file", EnvAPIKey, EnvOrgID, EnvToken)
	}
	return c, nil
}

// oneArg parses a command's flags and its single positional argument,
// what.
func oneArg(fs *flag.FlagSet, args []string, env Env, what string) (string, error) {
	pos, err := parse(fs, args, env.Stderr)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		return "", usagef("exactly one %s is required", what)
	}
	return pos[0], nil
}

// jobCommand parses the flags and the JOB_ID of a command on one job and
// makes its authenticated client.
func jobCommand(ctx context.Context, fs *flag.FlagSet, g *globalFlags, args []string, env Env) (string, *client.Client, error) {
	id, err := oneArg(fs, args, env, "JOB_ID")
	if err != nil {
		return "", nil, err
	}
	c, err := authedClient(ctx, g, env)
	if err != nil {
		return "", nil, err
	}
	return id, c, nil
}

// wait follows a job until it ends, drawing progress on Stderr, and
// prints the finished job; a job that did not complete is jobEnded.
func wait(ctx context.Context, c *client.Client, g *globalFlags, env Env, id string) error {
	poll := func(ctx context.Context) (client.Job, client.Raw, error) { return c.GetJob(ctx, id) }
	if !c.Authenticated() { // an anonymous verification
		poll = func(ctx context.Context) (client.Job, client.Raw, error) { return c.VerificationJob(ctx, id) }
	}
	p := newProgress(env.Stderr, env.TTY, id)
	j, raw, err := client.Wait(ctx, poll, env.Backoff, p.update)
	p.done()
	if err != nil {
		if ctx.Err() != nil {
			return interrupted{id}
		}
		return err
	}
	if err := printJob(env.Stdout, g.json, j, raw); err != nil {
		return err
	}
	if j.Status != client.StatusCompleted {
		return jobEnded{j}
	}
	return nil
}

func jobsList(ctx context.Context, args []string, env Env) error {
	fs, g := newFlagSet("jobs list", env)
	var f client.JobFilter
	fs.StringVar(&f.Kind, "kind", "", "only jobs of this kind: verify_media, attack, analysis, model_validate, probe")
	fs.StringVar(&f.Status, "status", "", "only jobs with this status: queued, in_progress, completed, failed, cancelled")
	fs.IntVar(&f.Limit, "limit", 0, "jobs per page, 1-1000 (API default 100)")
	fs.IntVar(&f.Offset, "offset", 0, "jobs to skip")
	pos, err := parse(fs, args, env.Stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("jobs list takes no arguments")
	}
	c, err := authedClient(ctx, g, env)
	if err != nil {
		return err
	}
	l, raw, err := c.ListJobs(ctx, f)
	if err != nil {
		return err
	}
	if g.json {
		return printRaw(env.Stdout, raw)
	}
	return printJobList(env.Stdout, l)
}

func jobsGet(ctx context.Context, args []string, env Env) error {
	fs, g := newFlagSet("jobs get", env)
	doWait := fs.Bool("wait", false, "follow the job's progress until it ends")
	id, c, err := jobCommand(ctx, fs, g, args, env)
	if err != nil {
		return err
	}
	if *doWait {
		return wait(ctx, c, g, env, id)
	}
	j, raw, err := c.GetJob(ctx, id)
	if err != nil {
		return err
	}
	return printJob(env.Stdout, g.json, j, raw)
}

func jobsCancel(ctx context.Context, args []string, env Env) error {
	fs, g := newFlagSet("jobs cancel", env)
	id, c, err := jobCommand(ctx, fs, g, args, env)
	if err != nil {
		return err
	}
	out, raw, err := c.CancelJob(ctx, id)
	if err != nil {
		return err
	}
	if g.json {
		return printRaw(env.Stdout, raw)
	}
	return printTable(env.Stdout, []string{"JOB_ID", "STATUS"}, [][]string{{out.JobID, out.Status}})
}

func webhookDeliveries(ctx context.Context, args []string, env Env) error {
	fs, g := newFlagSet("webhooks deliveries", env)
	jobID := fs.String("job", "", "only the deliveries of this job")
	limit := fs.Int("limit", 0, "deliveries per page, 1-1000 (API default 100)")
	offset := fs.Int("offset", 0, "deliveries to skip")
	pos, err := parse(fs, args, env.Stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("webhooks deliveries takes no arguments (the job is --job)")
	}
	c, err := authedClient(ctx, g, env)
	if err != nil {
		return err
	}
	l, raw, err := c.Deliveries(ctx, *jobID, *limit, *offset)
	if err != nil {
		return err
	}
	if g.json {
		return printRaw(env.Stdout, raw)
	}
	rows := make([][]string, 0, len(l.Data))
	for _, d := range l.Data {
		delivered := "-"
		if d.DeliveredAt != nil {
			delivered = fmtTime(*d.DeliveredAt)
		}
		rows = append(rows, []string{d.ID, d.JobID, d.EventType, d.Status, fmt.Sprint(d.Attempts), d.URL, fmtTime(d.CreatedAt), delivered})
	}
	if err := printTable(env.Stdout, []string{"ID", "JOB_ID", "EVENT", "STATUS", "ATTEMPTS", "URL", "CREATED", "DELIVERED"}, rows); err != nil {
		return err
	}
	return footer(env.Stdout, len(l.Data), l.Offset, l.Total)
}
