package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// errClosed answers writes that arrive after Close.
var errClosed = errors.New("storage: database is closed")

// groupWriteTimeout bounds one batched statement.
const groupWriteTimeout = 30 * time.Second

// groupWriter turns concurrent single-row writes of one kind (a job row
// inserted, started, completed) into one statement per batch: group
// commit, done by the application. A write that finds the writer idle runs
// at once, alone, as it would without batching; writes that arrive while a
// batch is in flight wait for it and then share the next statement. Every
// caller still returns only after its own row is committed (or the
// statement failed), so durability is what it was: what falls under load is
// the number of statements, commits and WAL flushes per job.
//
// A batch statement that fails is retried row by row, so one bad row (a
// duplicate id, a constraint) fails only its own caller. Rows with the same
// key never share a statement; the later one waits for the next batch.
type groupWriter[In, Out any] struct {
	max   int
	key   func(In) string
	exec  func(ctx context.Context, rows []In) ([]Out, error) // len(out) == len(rows)
	calls chan *groupCall[In, Out]
	quit  chan struct{} // closed by close: stop taking calls
	done  chan struct{} // closed when every flusher has returned
	once  sync.Once
}

type groupCall[In, Out any] struct {
	ctx  context.Context
	in   In
	out  Out
	err  error
	done chan struct{}
}

func newGroupWriter[In, Out any](flushers, max int, key func(In) string, exec func(context.Context, []In) ([]Out, error)) *groupWriter[In, Out] {
	g := &groupWriter[In, Out]{max: max, key: key, exec: exec,
		calls: make(chan *groupCall[In, Out], 4*flushers*max), quit: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for range flushers {
		wg.Add(1)
		go func() { defer wg.Done(); g.flush() }()
	}
	go func() { wg.Wait(); close(g.done) }()
	return g
}

// do writes one row and waits for its statement. A caller whose context
// ends first gets ctx.Err(); like a cancelled statement, its row may or may
// not have been written, but a row whose caller has gone before its batch
// starts is skipped.
func (g *groupWriter[In, Out]) do(ctx context.Context, in In) (Out, error) {
	var zero Out
	c := &groupCall[In, Out]{ctx: ctx, in: in, done: make(chan struct{})}
	select {
	case <-g.quit:
		return zero, errClosed
	default:
	}
	select {
	case g.calls <- c:
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-g.quit:
		return zero, errClosed
	}
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-g.done: // closed while queued: nobody will run it
		select {
		case <-c.done:
			return c.out, c.err
		default:
			return zero, errClosed
		}
	}
}

// close stops the flushers after their current batch and fails every
// write still queued.
func (g *groupWriter[In, Out]) close() {
	g.once.Do(func() { close(g.quit) })
	<-g.done
}

func (g *groupWriter[In, Out]) flush() {
	var carry []*groupCall[In, Out]
	for {
		batch := make([]*groupCall[In, Out], 0, g.max)
		seen := make(map[string]bool, g.max)
		var later []*groupCall[In, Out]
		add := func(c *groupCall[In, Out]) {
			if k := g.key(c.in); seen[k] {
				later = append(later, c)
			} else {
				seen[k] = true
				batch = append(batch, c)
			}
		}
		for _, c := range carry {
			add(c)
		}
		if len(batch) == 0 {
			select {
			case c := <-g.calls:
				add(c)
			case <-g.quit:
				g.fail(errClosed)
				return
			}
		}
	fill:
		for len(batch) < g.max {
			select {
			case c := <-g.calls:
				add(c)
			default:
				break fill
			}
		}
		carry = later
		g.run(batch)
		select {
		case <-g.quit:
			for _, c := range carry {
				c.err = errClosed
				close(c.done)
			}
			g.fail(errClosed)
			return
		default:
		}
	}
}

// fail answers every queued call with err.
func (g *groupWriter[In, Out]) fail(err error) {
	for {
		select {
		case c := <-g.calls:
			c.err = err
			close(c.done)
		default:
			return
		}
	}
}

func (g *groupWriter[In, Out]) run(batch []*groupCall[In, Out]) {
	live := batch[:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			close(c.done)
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	rows := make([]In, len(live))
	for i, c := range live {
		rows[i] = c.in
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupWriteTimeout)
	defer cancel()
	outs, err := g.exec(ctx, rows)
	if err == nil && len(outs) != len(live) {
		err = fmt.Errorf("storage: batched write returned %d answers for %d rows", len(outs), len(live))
	}
	if err == nil {
		for i, c := range live {
			c.out = outs[i]
			close(c.done)
		}
		return
	}
	if len(live) == 1 {
		live[0].err = err
		close(live[0].done)
		return
	}
	// One statement failed as a whole: nothing of it was written. Run the
	// rows one by one so each caller gets its own answer.
	for _, c := range live {
		one, err := g.exec(ctx, []In{c.in})
		if err == nil && len(one) == 1 {
			c.out = one[0]
		} else {
			c.err = err
		}
		close(c.done)
	}
}
