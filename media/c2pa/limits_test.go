package c2pa

import (
	"context"
	"strings"
	"testing"
)

// claimOf parses a fixture's active manifest and claim.
func claimOf(t *testing.T, name string) (data []byte, store, m *Box, claim *Claim) {
	t.Helper()
	data = readFixture(t, name)
	storeBytes, _, err := FindManifestStore(data)
	if err != nil {
		t.Fatal(err)
	}
	if store, err = ParseJUMBF(storeBytes); err != nil {
		t.Fatal(err)
	}
	if m, err = activeManifest(store); err != nil {
		t.Fatal(err)
	}
	if claim, _, err = manifestClaim(m); err != nil {
		t.Fatal(err)
	}
	return data, store, m, claim
}

// TestAssertionLimits: a claim naming more assertions than MaxAssertions
// is refused before anything is hashed; the same reference repeated is
// hashed once (the hard binding is not counted twice); a cancelled
// context stops the checks. The unmodified claim passes, so each case can
// fail. (The byte budget, 4x the file plus 16 MiB, is not reachable with
// this small fixture inside the reference cap.)
func TestAssertionLimits(t *testing.T) {
	data, store, m, claim := claimOf(t, "C.jpg")
	check := func(ctx context.Context, c *Claim) *Result {
		var res Result
		v := &verifier{opts: Options{Context: ctx}, data: data, store: store, budget: newBudget(len(data))}
		v.checkAssertions(&res, m, c, true)
		return &res
	}
	if res := check(context.Background(), claim); len(res.Failures) != 0 || !res.DataHashValid {
		t.Fatalf("fixture claim: %q", res.Failures)
	}

	many := *claim
	many.Assertions = nil
	for len(many.Assertions) <= MaxAssertions {
		many.Assertions = append(many.Assertions, claim.AllAssertions()...)
	}
	many.CreatedAssertions, many.GatheredAssertions = nil, nil
	if res := check(context.Background(), &many); !strings.Contains(res.Error, "more than") {
		t.Errorf("%d references: %q", len(many.Assertions), res.Failures)
	}

	repeated := *claim
	repeated.Assertions = nil
	for i := 0; i < 50; i++ {
		repeated.Assertions = append(repeated.Assertions, claim.AllAssertions()...)
	}
	repeated.CreatedAssertions, repeated.GatheredAssertions = nil, nil
	if res := check(context.Background(), &repeated); len(res.Failures) != 0 || !res.DataHashValid {
		t.Errorf("repeated references: %q", res.Failures)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res := check(ctx, claim); !strings.Contains(res.Error, "stopped") {
		t.Errorf("cancelled: %q", res.Failures)
	}
	if hashBudget(len(data)) < 4*int64(len(data)) {
		t.Errorf("budget %d for %d bytes", hashBudget(len(data)), len(data))
	}
}
