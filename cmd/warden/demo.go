package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/wardenlab/warden/config"
	"github.com/wardenlab/warden/queue"
	"github.com/wardenlab/warden/storage"
	"github.com/wardenlab/warden/worker/demo"
	"github.com/wardenlab/warden/worker/torch"
)

// demoCommand is `warden demo train [--org ORG_ID]`: train the demo models
// (or reuse the cached files) and register them for an org (default: the
// demo org of `warden dev`).
func demoCommand(ctx context.Context, cfg config.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "train" {
		return errors.New("usage: warden demo train [--org ORG_ID]")
	}
	fs := flag.NewFlagSet("demo train", flag.ContinueOnError)
	org := fs.String("org", "", "org to register the models for (default: the org named \"demo\")")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if !torch.Available() {
		return demo.ErrNoTorch
	}
	d, closeDeps, err := demoDeps(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDeps()
	if *org == "" {
		o, err := d.DB.FindOrgByName(ctx, "demo")
		if err != nil {
			return fmt.Errorf("no --org given and no org named \"demo\" (start `warden dev` once or pass --org): %w", err)
		}
		*org = o.ID
	} else if _, err := d.DB.GetOrg(ctx, *org); err != nil {
		return fmt.Errorf("--org %s: %w", *org, err)
	}
	s, regs, err := demo.TrainAndRegister(ctx, d, *org)
	if err != nil {
		return err
	}
	for _, t := range s.All() {
		fmt.Fprintf(stdout, "%-20s %s  held-out accuracy %.4f  macro F1 %.4f  (%s)\n", t.Name, t.Type, t.Scores.Accuracy, t.Scores.F1, t.ModelPath)
	}
	for _, r := range regs {
		if r.Existed {
			fmt.Fprintf(stdout, "%-20s already registered as %s\n", r.Name, r.ModelID)
		} else {
			fmt.Fprintf(stdout, "%-20s registered as %s (validation job %s)\n", r.Name, r.ModelID, r.JobID)
		}
	}
	return nil
}

// demoDeps opens what demo registration needs.
func demoDeps(ctx context.Context, cfg config.Config) (demo.Deps, func(), error) {
	db, err := openDB(ctx, cfg)
	if err != nil {
		return demo.Deps{}, nil, err
	}
	blobs, err := storage.OpenBlobs(ctx, cfg)
	if err != nil {
		db.Close()
		return demo.Deps{}, nil, err
	}
	redisOpt, err := queue.RedisOpt(cfg.RedisURL)
	if err != nil {
		db.Close()
		return demo.Deps{}, nil, err
	}
	client := queue.NewClient(redisOpt)
	svc := jobService(cfg, db, blobs, redisOpt, client)
	return demo.Deps{DB: db, Blobs: blobs, Jobs: svc, DataDir: cfg.DataDir, WordNetDir: cfg.WordNetDir},
		func() { svc.Close(); client.Close(); db.Close() }, nil
}
