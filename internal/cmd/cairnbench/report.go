package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// report is what cairnbench measured. Its JSON form is the -json output.
type report struct {
	Runs         int     `json:"runs"`
	Steps        int     `json:"steps"`
	WaitingRuns  int     `json:"waiting_runs"`
	Sample       int     `json:"sample"`
	CPUs         int     `json:"cpus"`
	LoadStart    string  `json:"load_start,omitempty"` // /proc/loadavg
	LoadEnd      string  `json:"load_end,omitempty"`
	Redis        string  `json:"redis"` // "private, <addr>" or "shared, <addr>"
	RedisVersion string  `json:"redis_version"`
	RTTMicros    float64 `json:"rtt_us"` // one PING, median of 2,000

	Throughput []throughput `json:"throughput"`
	Waiting    []waiting    `json:"waiting,omitempty"`
}

// throughput is one measurement of runs with some worker processes.
type throughput struct {
	Round   int `json:"round"`
	Workers int `json:"workers"`
	// Seconds is from the first start to the last result; StartSeconds
	// until the last run was started.
	Seconds      float64 `json:"seconds"`
	StartSeconds float64 `json:"start_seconds"`
	StepsPerSec  float64 `json:"steps_per_s"`
	// XFirst is StepsPerSec over that of the first -workers entry in the
	// same round.
	XFirst float64 `json:"x_first"`
	// CPU per step, in µs: the worker processes' (all together), the
	// redis-server's, and the parent's (the client that starts the runs
	// and waits for them).
	WorkerCPU float64     `json:"worker_cpu_us_per_step"`
	RedisCPU  float64     `json:"redis_cpu_us_per_step"`
	ClientCPU float64     `json:"client_cpu_us_per_step"`
	Bytes     bytesPerRun `json:"bytes_per_run"`
}

// waiting is one measurement of runs waiting on a timer.
type waiting struct {
	Round int         `json:"round"`
	Bytes bytesPerRun `json:"bytes_per_run"`
}

// bytesPerRun is the Redis memory of a run.
type bytesPerRun struct {
	Sampled int `json:"sampled_runs"`
	// RunKeys is the MEMORY USAGE of all of a run's keys, the mean over
	// the sampled runs; ByKey splits it by key ("run", "history", ...).
	RunKeys    float64            `json:"run_keys"`
	KeysPerRun float64            `json:"keys_per_run"`
	ByKey      map[string]float64 `json:"by_key"`
	// Shared is the growth of the keys no one run owns (task streams,
	// timers, indexes), per run.
	Shared float64 `json:"shared"`
	// UsedMemory is the growth of INFO memory used_memory, per run.
	UsedMemory float64 `json:"used_memory"`
}

// write prints the report as text.
func (r *report) write(w io.Writer) error {
	fmt.Fprintf(w, "cairnbench: %d runs x %d no-op steps; %d CPUs; redis-server %s (%s); round trip %.1f µs (PING, median)\n",
		r.Runs, r.Steps, r.CPUs, r.RedisVersion, r.Redis, r.RTTMicros)
	if r.LoadStart != "" {
		fmt.Fprintf(w, "load average: %s at the start, %s at the end\n", r.LoadStart, r.LoadEnd)
	}

	fmt.Fprintf(w, "\nthroughput: steps/s from the first start to the last result; x-first: over the first -workers entry in the same round;\nCPU in µs per step, from the processes' own accounting\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tworkers\tsteps/s\tx-first\tseconds\tstarting\tworker-cpu\tredis-cpu\tclient-cpu\t")
	for _, t := range r.Throughput {
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.2f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f\t\n", t.Round, t.Workers, t.StepsPerSec, t.XFirst,
			t.Seconds, t.StartSeconds, t.WorkerCPU, t.RedisCPU, t.ClientCPU)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rounds := r.Throughput[len(r.Throughput)-1].Round; rounds > 1 {
		fmt.Fprintf(w, "\nmedian (min-max) of %d rounds:\n", rounds)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "workers\tsteps/s\tx-first\tworker-cpu\tredis-cpu\t")
		for _, n := range workerCounts(r.Throughput) {
			var ts []throughput
			for _, t := range r.Throughput {
				if t.Workers == n {
					ts = append(ts, t)
				}
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t\n", n,
				spread(ts, "%.0f", func(t throughput) float64 { return t.StepsPerSec }),
				spread(ts, "%.2f", func(t throughput) float64 { return t.XFirst }),
				spread(ts, "%.1f", func(t throughput) float64 { return t.WorkerCPU }),
				spread(ts, "%.1f", func(t throughput) float64 { return t.RedisCPU }))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintf(w, "\nRedis bytes per run: run-keys, MEMORY USAGE of all of a run's keys (mean of %d sampled runs); shared, growth of the\nkeys no one run owns (task streams, timers, indexes); used_memory, growth of INFO used_memory\n", r.Sample)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "runs\tround\tworkers\trun-keys\tkeys\tshared\tused_memory\tby key")
	for _, t := range r.Throughput {
		writeBytes(tw, "completed", t.Round, fmt.Sprint(t.Workers), t.Bytes)
	}
	for _, wt := range r.Waiting {
		writeBytes(tw, "waiting on a timer", wt.Round, "1", wt.Bytes)
	}
	return tw.Flush()
}

func writeBytes(w io.Writer, what string, round int, workers string, b bytesPerRun) {
	kinds := slices.SortedFunc(maps.Keys(b.ByKey), func(x, y string) int { return cmp.Compare(b.ByKey[y], b.ByKey[x]) })
	var by []string
	for _, k := range kinds {
		by = append(by, fmt.Sprintf("%s %.0f", k, b.ByKey[k]))
	}
	fmt.Fprintf(w, "%s\t%d\t%s\t%.0f\t%.1f\t%.0f\t%.0f\t%s\n", what, round, workers, b.RunKeys, b.KeysPerRun, b.Shared, b.UsedMemory,
		strings.Join(by, ", "))
}

// workerCounts returns the numbers of worker processes measured, in the
// order of the first round.
func workerCounts(ts []throughput) []int {
	var out []int
	for _, t := range ts {
		if !slices.Contains(out, t.Workers) {
			out = append(out, t.Workers)
		}
	}
	return out
}

// spread formats the median, minimum and maximum of f over ts.
func spread(ts []throughput, format string, f func(throughput) float64) string {
	var vs []float64
	for _, t := range ts {
		vs = append(vs, f(t))
	}
	slices.Sort(vs)
	median := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		median = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return fmt.Sprintf(format+" ("+format+"-"+format+")", median, vs[0], vs[len(vs)-1])
}
