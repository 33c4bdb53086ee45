package queue

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
)

// RedisOpt parses WARDEN_REDIS_URL into asynq's connection option. Besides
// asynq's redis://, rediss:// and redis-socket:// forms it reads the
// Sentinel form fully (asynq's own parser drops the database and the
// primary's password):
//
//	redis-sentinel://[[user]:password@]host:port[,host:port…]/db?master=NAME[&sentinel_password=P][&sentinel_username=U]
//
// The password in the authority is the primary's (and its replicas');
// sentinel_password is the sentinels' own when they require one.
func RedisOpt(raw string) (asynq.RedisConnOpt, error) {
	u, err := url.Parse(raw)
	if err == nil && u.Scheme == "redis-sentinel" {
		opt, err := sentinelOpt(u)
		if err != nil {
			return nil, fmt.Errorf("WARDEN_REDIS_URL: %w", err)
		}
		return opt, nil
	}
	opt, err := asynq.ParseRedisURI(raw)
	if err != nil {
		return nil, fmt.Errorf("WARDEN_REDIS_URL: %w", err)
	}
	return opt, nil
}

func sentinelOpt(u *url.URL) (asynq.RedisFailoverClientOpt, error) {
	var o asynq.RedisFailoverClientOpt
	q := u.Query()
	if o.MasterName = q.Get("master"); o.MasterName == "" {
		return o, fmt.Errorf("redis-sentinel:// needs ?master=<name of the monitored primary>")
	}
	for _, addr := range strings.Split(u.Host, ",") {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return o, fmt.Errorf("sentinel address %q is not host:port", addr)
		}
		o.SentinelAddrs = append(o.SentinelAddrs, addr)
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return o, fmt.Errorf("database %q is not a number", db)
		}
		o.DB = n
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	o.SentinelUsername, o.SentinelPassword = q.Get("sentinel_username"), q.Get("sentinel_password")
	for k := range q {
		if k != "master" && k != "sentinel_password" && k != "sentinel_username" {
			return o, fmt.Errorf("unknown parameter %q (master, sentinel_username, sentinel_password)", k)
		}
	}
	return o, nil
}
