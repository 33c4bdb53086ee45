package jobs

// MaxProbeHoldMS bounds how long a probe may hold a worker slot.
const MaxProbeHoldMS = 60000

// ProbeInput is a probe (canary) job's input.
type ProbeInput struct {
	HoldMS int `json:"hold_ms"` // how long to hold the worker slot, 0 to MaxProbeHoldMS
}

// ProbeResult says which worker ran the probe.
type ProbeResult struct {
	WorkerHost string `json:"worker_host"`
	WorkerPID  int    `json:"worker_pid"`
	Attempt    int    `json:"attempt"`
	HeldMS     int    `json:"held_ms"`
}

// Summary is always "ok": a probe that ran succeeded.
func (ProbeResult) Summary() string { return "ok" }
