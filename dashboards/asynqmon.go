package dashboards

import (
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// Asynqmon returns the asynqmon UI and API served under rootPath,
// view-only when readOnly. The caller wraps it in operator authentication.
func Asynqmon(redis asynq.RedisConnOpt, rootPath string, readOnly bool) http.Handler {
	return asynqmon.New(asynqmon.Options{RootPath: rootPath, RedisConnOpt: redis, ReadOnly: readOnly})
}
