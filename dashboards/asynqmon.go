package dashboards

import (
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// Asynqmon returns the asynqmon UI and API served under rootPath. The caller
// wraps it in admin authentication.
func Asynqmon(redis asynq.RedisConnOpt, rootPath string) http.Handler {
	return asynqmon.New(asynqmon.Options{RootPath: rootPath, RedisConnOpt: redis, ReadOnly: false})
}
