package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/wardenlab/warden/client"
)

// progress shows a job's progress while --wait follows it: on a terminal a
// bar redrawn in place, elsewhere (a pipe, a CI log) one line per change.
type progress struct {
	w     io.Writer
	tty   bool
	id    string
	drawn bool // a bar is on the current line
}

func newProgress(w io.Writer, tty bool, id string) *progress {
	return &progress{w: w, tty: tty, id: id}
}

const barWidth = 30

// bar renders pct (clamped to 0-100) as [#####-----].
func bar(pct int) string {
	pct = max(0, min(100, pct))
	n := pct * barWidth / 100
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", barWidth-n) + "]"
}

func (p *progress) update(j client.Job) {
	status := j.Status
	if j.Stage != "" {
		status += " " + j.Stage
	}
	if !p.tty {
		fmt.Fprintf(p.w, "%s %d%% %s\n", j.JobID, j.Progress, status)
		return
	}
	// \r returns to the line's start; \x1b[K clears what a longer line left.
	fmt.Fprintf(p.w, "\r%s %3d%% %s\x1b[K", bar(j.Progress), j.Progress, status)
	p.drawn = true
}

// done ends the bar's line.
func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
