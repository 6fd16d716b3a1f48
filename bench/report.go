package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the whole run: the header that makes it reproducible and the
// mode's result.
type report struct {
	Tool       string        `json:"tool"`
	Mode       string        `json:"mode"`
	Command    string        `json:"command"`
	Config     *config       `json:"config"`
	ConfigLine string        `json:"config_line"`
	Duration   string        `json:"duration,omitempty"`
	GoVersion  string        `json:"go_version"`
	OS         string        `json:"os"`
	Arch       string        `json:"arch"`
	GOMAXPROCS int           `json:"gomaxprocs"`
	NumCPU     int           `json:"num_cpu"`
	CPUModel   string        `json:"cpu_model,omitempty"`
	Started    time.Time     `json:"started"`
	Ingest     *IngestResult `json:"ingest,omitempty"`
	Query      *QueryResult  `json:"query,omitempty"`
}

func newReport(cfg *config, args []string) *report {
	r := &report{
		Tool:       "cairn bench",
		Mode:       cfg.Mode,
		Command:    "go run ./bench " + shellJoin(args),
		Config:     cfg,
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		CPUModel:   cpuModel(),
		Started:    time.Now().UTC().Truncate(time.Second),
	}
	if cfg.Duration > 0 {
		r.Duration = cfg.Duration.String()
	}
	r.ConfigLine = r.configLine()
	return r
}

// shellJoin quotes args for a POSIX shell, masking a --token value.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	maskNext := false
	for i, a := range args {
		switch {
		case maskNext:
			a, maskNext = "REDACTED", false
		case a == "-token" || a == "--token":
			maskNext = true
		case strings.HasPrefix(a, "-token=") || strings.HasPrefix(a, "--token="):
			a = a[:strings.IndexByte(a, '=')+1] + "REDACTED"
		}
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (r *report) configLine() string {
	c := r.Config
	parts := []string{
		"server=" + c.Server, "org=" + c.Org, "context=" + c.Context,
		"clients=" + strconv.Itoa(c.Clients),
	}
	switch c.Mode {
	case "ingest", "load":
		parts = append(parts, "batch="+strconv.Itoa(c.Batch), "pool="+strconv.Itoa(c.Pool))
		if c.Mode == "ingest" {
			parts = append(parts, "duration="+c.Duration.String())
		} else {
			parts = append(parts, "events="+strconv.FormatInt(c.Events, 10))
		}
	case "query":
		parts = append(parts, "duration="+c.Duration.String(), "limit="+strconv.Itoa(c.Limit),
			"trail-ratio="+strconv.FormatFloat(c.TrailRatio, 'g', -1, 64))
		if c.Shapes != "" {
			parts = append(parts, "shapes="+c.Shapes)
		}
	}
	parts = append(parts, "actors="+strconv.Itoa(c.Actors), "targets="+strconv.Itoa(c.Targets),
		"groups="+strconv.Itoa(c.Groups), "seed="+strconv.FormatUint(c.Seed, 10),
		"timeout="+c.Timeout.String())
	return strings.Join(parts, " ")
}

func (r *report) printHeader(w io.Writer) {
	fmt.Fprintf(w, "cairn bench: %s\n", r.Mode)
	fmt.Fprintf(w, "command    %s\n", r.Command)
	fmt.Fprintf(w, "config     %s\n", r.ConfigLine)
	fmt.Fprintf(w, "host       %s/%s %s  GOMAXPROCS=%d  NumCPU=%d", r.OS, r.Arch, r.GoVersion, r.GOMAXPROCS, r.NumCPU)
	if r.CPUModel != "" {
		fmt.Fprintf(w, "  cpu=%q", r.CPUModel)
	}
	fmt.Fprintf(w, "\nstarted    %s\n\n", r.Started.Format(time.RFC3339))
}

func (r *report) printResult(w io.Writer) {
	if r.Ingest != nil {
		printIngest(w, r.Ingest)
	}
	if r.Query != nil {
		printQuery(w, r.Query)
	}
}

func printIngest(w io.Writer, s *IngestResult) {
	what := "events/request (JSON arrays)"
	if s.Single {
		what = "event/request (single JSON objects)"
	}
	fmt.Fprintf(w, "data       %d %s; mean event %.0f B encoded; mean body %s; %d pooled bodies (generated in %s)\n",
		s.Batch, what, s.EventBytesMean, bytesStr(s.BodyBytesMean), s.PoolBodies, fmtMs(s.GenerateMs))
	fmt.Fprintf(w, "wall       %.2fs\n", s.WallSeconds)
	events := commas(s.Events) + " committed"
	if s.TargetEvents > 0 {
		events += " of " + commas(s.TargetEvents)
	}
	fmt.Fprintf(w, "events     %-32s %s events/s\n", events, commas(int64(s.EventsPerSec+0.5)))
	fmt.Fprintf(w, "requests   %-32s %.1f req/s  %.1f MB/s sent\n",
		fmt.Sprintf("%s ok (%s attempts)", commas(s.Requests), commas(s.Attempts)), s.RequestsPerSec, s.MBPerSec)
	fmt.Fprintf(w, "latency    %s\n", latLine(s.Latency))
	fmt.Fprintf(w, "errors     %s\n", errLine(s.Errors))
	if s.FirstError != "" {
		fmt.Fprintf(w, "first err  %s\n", s.FirstError)
	}
	if s.Stopped != "" {
		fmt.Fprintf(w, "stopped    %s\n", s.Stopped)
	}
}

func latLine(l LatencySummary) string {
	if l.Count == 0 {
		return "no successful requests"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  mean %s  (n=%s, per request)",
		fmtMs(l.P50Ms), fmtMs(l.P90Ms), fmtMs(l.P99Ms), fmtMs(l.MaxMs), fmtMs(l.MeanMs), commas(int64(l.Count)))
}

func errLine(e errCounts) string {
	if e.total() == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(e)) {
		if e[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%s", k, commas(e[k])))
		}
	}
	return strings.Join(parts, " ")
}

func printQuery(w io.Writer, s *QueryResult) {
	if s.NewestEvent != "" {
		fmt.Fprintf(w, "data       newest event_time %s; events reach back at least %s (time windows fall in there)\n", s.NewestEvent, s.DataSpan)
	}
	fmt.Fprintf(w, "wall       %.2fs\n", s.WallSeconds)
	fmt.Fprintf(w, "requests   %s ok  %.1f req/s\n", commas(s.Requests), s.RequestsPerSec)
	fmt.Fprintf(w, "errors     %s\n\n", errLine(s.Errors))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-24s\tok\treq/s\tp50\tp90\tp99\tmax\tmean\titems\tempty%%\tmore%%\terrors\t\n", "shape")
	row := func(name string, ok int64, l LatencySummary, items, empty, more float64, errs string) {
		if ok == 0 {
			fmt.Fprintf(tw, "%-24s\t0\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s\t\n", name, errs)
			return
		}
		fmt.Fprintf(tw, "%-24s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, commas(ok),
			float64(ok)/s.WallSeconds, fmtMs(l.P50Ms), fmtMs(l.P90Ms), fmtMs(l.P99Ms), fmtMs(l.MaxMs), fmtMs(l.MeanMs),
			optF(items, 1), optF(empty, 0), optF(more, 0), errs)
	}
	for _, kind := range []string{"search", "trail"} {
		l := s.Search
		if kind == "trail" {
			l = s.Trail
		}
		if l.Count == 0 {
			continue
		}
		var items, empty, more float64
		errs := errCounts{}
		for _, sh := range s.Shapes {
			if sh.Kind == kind {
				n := float64(sh.Requests)
				items += sh.MeanItems * n
				empty += sh.EmptyPct * n
				more += sh.FullPct * n
				errs.merge(sh.Errors)
			}
		}
		n := float64(l.Count)
		row("ALL "+kind, int64(l.Count), l, items/n, empty/n, more/n, errShort(errs))
	}
	for _, sh := range s.Shapes {
		row(sh.Name, sh.Requests, sh.Latency, sh.MeanItems, sh.EmptyPct, sh.FullPct, errShort(sh.Errors))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nshape examples (items = mean hits per page; more% = pages with a next_cursor):")
	for _, sh := range s.Shapes {
		fmt.Fprintf(w, "  %-24s %s\n", sh.Name, sh.Example)
	}
	for _, sh := range s.Shapes {
		if sh.FirstError != "" {
			fmt.Fprintf(w, "first error of %s: %s\n", sh.Name, sh.FirstError)
		}
	}
	if s.Stopped != "" {
		fmt.Fprintf(w, "stopped    %s\n", s.Stopped)
	}
}

func errShort(e errCounts) string {
	if e.total() == 0 {
		return "-"
	}
	return errLine(e)
}

func optF(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func bytesStr(n float64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", n/1e3)
	}
	return fmt.Sprintf("%.0f B", n)
}
