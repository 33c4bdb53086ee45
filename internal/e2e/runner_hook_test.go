package e2e

import "github.com/wardenlab/warden/worker/runner"

// Workers under test start model runners from this test binary.
func init() { runner.ServeIfStarted() }
