package api

import (
	"testing"
	"time"

	"github.com/wardenlab/warden/records"
)

// TestGuardTargetsSaw: a newer completed defence analysis replaces the
// cached one; an older one replaces nothing, and drops the entry when it
// is a fresh lookup's newest (the cached one was deleted); the key is the
// org and the registration, and the entry keeps its expiry.
func TestGuardTargetsSaw(t *testing.T) {
	now := time.Now()
	old, cur, next := records.Job{ID: "a", CreatedAt: now.Add(-time.Hour)}, records.Job{ID: "b", CreatedAt: now}, records.Job{ID: "c", CreatedAt: now.Add(time.Minute)}
	var g guardTargets
	sawProfile(&g, "org", "m", next, true) // nothing cached: nothing to do
	if _, ok := g.Get("org", "m", now); ok {
		t.Fatal("cached without a lookup")
	}
	g.Put("org", "m", guardTarget{profile: cur}, now, now.Add(time.Second), nil)
	sawProfile(&g, "org", "m", old, false)
	sawProfile(&g, "other", "m", next, true)
	if e, _ := g.Get("org", "m", now); e.profile.ID != "b" {
		t.Fatalf("an older analysis or another org's replaced the cached one: %+v", e)
	}
	sawProfile(&g, "org", "m", next, false)
	if e, ok := g.Get("org", "m", now); !ok || e.profile.ID != "c" {
		t.Fatalf("a newer analysis: %+v", e)
	}
	if _, ok := g.Get("org", "m", now.Add(time.Second)); ok {
		t.Fatal("the entry outlived its expiry")
	}
	sawProfile(&g, "org", "m", cur, true)
	if _, ok := g.Get("org", "m", now); ok {
		t.Fatal("the newest is older than the cached one, which stays")
	}
	g.Put("org", "m", guardTarget{profile: cur}, now, now.Add(time.Second), nil)
	g.Forget("org", "m")
	if _, ok := g.Get("org", "m", now); ok {
		t.Fatal("forget left the entry")
	}
}

// TestMonitorKeyPerProfile: a stream's state is per org, credential,
// model and profile.
func TestMonitorKeyPerProfile(t *testing.T) {
	if a, b := monitorKey("o", "c", "m", "p1"), monitorKey("o", "c", "m", "p2"); a == b || a != "warden:defence:monitor:o:c:m:p1" {
		t.Fatalf("keys %q %q", a, b)
	}
}
