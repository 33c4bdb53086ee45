package tenantcache

import (
	"testing"
	"time"
)

// TestPut: a concurrent lookup's live entry can win over the
// value put (keep), an expired one cannot; entries are per org.
func TestPut(t *testing.T) {
	now := time.Now()
	var c Cache[int]
	newer := func(old, v int) int { return max(old, v) }
	c.Put("o1", "x", 5, now, now.Add(time.Second), nil)
	c.Put("o1", "x", 3, now, now.Add(time.Second), newer)
	if v, _ := c.Get("o1", "x", now); v != 5 {
		t.Fatalf("keep: got %d, want the live 5", v)
	}
	c.Put("o1", "x", 2, now.Add(2*time.Second), now.Add(3*time.Second), newer)
	if v, _ := c.Get("o1", "x", now.Add(2*time.Second)); v != 2 {
		t.Fatalf("an expired entry won: %d", v)
	}
	if _, ok := c.Get("o2", "x", now); ok {
		t.Fatal("another org's entry answered")
	}
}

// TestLimit: past Limit entries the cache starts over instead of growing.
func TestLimit(t *testing.T) {
	now := time.Now()
	c := Cache[int]{Limit: 2}
	c.Put("o", "a", 1, now, now.Add(time.Minute), nil)
	c.Put("o", "b", 2, now, now.Add(time.Minute), nil)
	c.Put("o", "c", 3, now, now.Add(time.Minute), nil)
	if _, ok := c.Get("o", "a", now); ok {
		t.Fatal("kept more than Limit entries")
	}
	if v, ok := c.Get("o", "c", now); !ok || v != 3 {
		t.Fatalf("the newest entry: %d %v", v, ok)
	}
}
