package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wardenlab/warden/client"
)

// printRaw writes the API's JSON as it came, one document per line.
func printRaw(w io.Writer, raw client.Raw) error {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// printTable writes rows under a header, columns aligned.
func printTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			if c == "" {
				c = "-"
			}
			cells[i] = cell(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// cell keeps a table cell on one line (tabs and newlines would break the
// alignment).
func cell(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// footer says which part of a paged list was shown.
func footer(w io.Writer, n, offset int, total int64) error {
	if int64(n) == total && offset == 0 {
		return nil
	}
	_, err := fmt.Fprintf(w, "(%d of %d, from offset %d)\n", n, total, offset)
	return err
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func printJobList(w io.Writer, l client.JobList) error {
	rows := make([][]string, 0, len(l.Data))
	for _, j := range l.Data {
		rows = append(rows, []string{j.JobID, j.Kind, j.Status, strconv.Itoa(j.Progress) + "%", j.Stage, fmtTime(j.CreatedAt)})
	}
	if err := printTable(w, []string{"JOB_ID", "KIND", "STATUS", "PROGRESS", "STAGE", "CREATED"}, rows); err != nil {
		return err
	}
	return footer(w, len(l.Data), l.Offset, l.Total)
}

// printJob prints one job: its JSON, or a FIELD/VALUE table with the
// result's top-level fields (scalars as they are; objects and lists
// summarised).
func printJob(w io.Writer, asJSON bool, j client.Job, raw client.Raw) error {
	if asJSON {
		return printRaw(w, raw)
	}
	rows := [][]string{
		{"job_id", j.JobID}, {"kind", j.Kind}, {"status", j.Status},
		{"progress", strconv.Itoa(j.Progress) + "%"}, {"stage", j.Stage}, {"attempts", strconv.Itoa(j.Attempts)},
		{"created_at", fmtTime(j.CreatedAt)},
	}
	if j.StartedAt != nil {
		rows = append(rows, []string{"started_at", fmtTime(*j.StartedAt)})
	}
	if j.CompletedAt != nil {
		rows = append(rows, []string{"completed_at", fmtTime(*j.CompletedAt)})
	}
	if j.Error != nil {
		rows = append(rows, []string{"error", *j.Error})
	}
	rows = append(rows, resultRows(j.Result)...)
	return printTable(w, []string{"FIELD", "VALUE"}, rows)
}

// resultRows are a result document's top-level fields as result.NAME rows.
func resultRows(raw json.RawMessage) [][]string {
	var doc map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &doc) != nil {
		return nil
	}
	var rows [][]string
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		rows = append(rows, []string{"result." + k, summarise(doc[k])})
	}
	return rows
}

// summarise renders a JSON value in a table cell: scalars as they are
// (long strings cut), objects and lists by their size.
func summarise(v json.RawMessage) string {
	var x any
	if json.Unmarshal(v, &x) != nil {
		return string(v)
	}
	switch t := x.(type) {
	case nil:
		return "null"
	case string:
		if len(t) > 80 {
			return t[:77] + "..."
		}
		return t
	case []any:
		return fmt.Sprintf("[%d items]", len(t))
	case map[string]any:
		return fmt.Sprintf("{%d fields}", len(t))
	default:
		return string(bytes.TrimSpace(v))
	}
}
