package deploy_test

import (
	"context"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/wardenlab/warden/internal/testenv"
)

// TestAsynqPendingList checks on a real Redis that asynq keeps a queue's
// pending tasks in the list the KEDA scalers watch.
func TestAsynqPendingList(t *testing.T) {
	url := testenv.Redis(t)
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	for i := range 3 {
		if _, err := client.Enqueue(asynq.NewTask("deploy:check", []byte{byte(i)}), asynq.Queue("gpu")); err != nil {
			t.Fatal(err)
		}
	}
	ropt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	ctx := context.Background()
	kind, err := rdb.Type(ctx, pendingList("gpu")).Result()
	if err != nil || kind != "list" {
		t.Fatalf("%s is a %q (%v), want a list", pendingList("gpu"), kind, err)
	}
	if n, err := rdb.LLen(ctx, pendingList("gpu")).Result(); err != nil || n != 3 {
		t.Fatalf("%s holds %d tasks (%v), want 3", pendingList("gpu"), n, err)
	}
}
