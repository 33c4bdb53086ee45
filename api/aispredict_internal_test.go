package api

import (
	"testing"
	"time"

	"github.com/wardenlab/warden/records"
)

// TestGuardTargetsSaw: a newer completed defence analysis replaces the
// cached one; an older one replaces nothing, and drops the entry when it
// is a fresh lookup's newest (the cached one was deleted); the key is the
// org and the registration.
func TestGuardTargetsSaw(t *testing.T) {
	now := time.Now()
	old, cur, next := records.Job{ID: "a", CreatedAt: now.Add(-time.Hour)}, records.Job{ID: "b", CreatedAt: now}, records.Job{ID: "c", CreatedAt: now.Add(time.Minute)}
	key := [2]string{"org", "m"}
	var g guardTargets
	g.saw("org", "m", next, true) // nothing cached: nothing to do
	if len(g.m) != 0 {
		t.Fatalf("cached %v", g.m)
	}
	g.m = map[[2]string]guardTarget{key: {profile: cur, until: now.Add(time.Second)}}
	g.saw("org", "m", old, false)
	g.saw("other", "m", next, true)
	if g.m[key].profile.ID != "b" {
		t.Fatalf("an older analysis or another org's replaced the cached one: %v", g.m)
	}
	g.saw("org", "m", next, false)
	if e := g.m[key]; e.profile.ID != "c" || !e.until.Equal(now.Add(time.Second)) {
		t.Fatalf("a newer analysis: %+v", e)
	}
	g.saw("org", "m", cur, true)
	if _, ok := g.m[key]; ok {
		t.Fatalf("the newest is older than the cached one, which stays: %v", g.m)
	}
	g.m[key] = guardTarget{profile: cur}
	g.forget("org", "m")
	if len(g.m) != 0 {
		t.Fatalf("forget: %v", g.m)
	}
}

// TestMonitorKeyPerProfile: a stream's state is per org, credential,
// model and profile.
func TestMonitorKeyPerProfile(t *testing.T) {
	if a, b := monitorKey("o", "c", "m", "p1"), monitorKey("o", "c", "m", "p2"); a == b || a != "warden:defence:monitor:o:c:m:p1" {
		t.Fatalf("keys %q %q", a, b)
	}
}
