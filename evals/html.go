package evals

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// WriteHTML writes r as one self-contained HTML page: inline CSS, no
// script and no external asset, so it can be archived as a CI artifact
// and opened from disk. It has the summary (counts by status, the agent,
// when and how long), then a row per case (status, trials passed, grades,
// tokens, latency) that expands (<details>) into its trials: each
// trial's grades with their explanations, the runner's notes, its tool
// calls with arguments and results, and its final answer. Every text from the run is escaped
// by html/template: a model's answer shows as text, never as markup.
func (r *Report) WriteHTML(w io.Writer) error {
	t, err := template.New("report").Funcs(template.FuncMap{
		"latency": formatLatency,
		"percent": func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
		"score":   func(f float64) string { return fmt.Sprintf("%.2f", f) },
		"join":    strings.Join,
		"clean":   xmlText,
	}).Parse(reportHTML)
	if err != nil {
		return err
	}
	type caseView struct {
		*CaseReport
		Passed  int
		Grades  string
		Tokens  int
		Latency time.Duration
	}
	view := struct {
		*Report
		Tally   Tally
		Started string
		Cases   []caseView
	}{Report: r, Tally: r.Tally(), Started: formatTimestamp(r.Started)}
	for i := range r.Cases {
		c := &r.Cases[i]
		view.Cases = append(view.Cases, caseView{CaseReport: c, Passed: c.passedTrials(), Grades: c.gradeTally(), Tokens: c.meanTokens(), Latency: c.meanLatency()})
	}
	return t.Execute(w, view)
}

// reportHTML is WriteHTML's page. Every element is closed, so that the
// page is well-formed XML as well as HTML.
const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>{{.Agent}}: evaluation report</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
.summary { color: #555; margin-bottom: 1.5em; }
.summary b { color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3em 0.6em; border-bottom: 1px solid #e4e4e4; vertical-align: top; }
th { background: #f6f6f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; padding: 0.05em 0.5em; border-radius: 0.6em; }
.pass { background: #dff3e3; color: #16652a; }
.fail { background: #fbe1e1; color: #8a1c1c; }
.flaky { background: #fff1cc; color: #7a5400; }
.error { background: #ece1f7; color: #5a2a86; }
details { margin: 0.3em 0; }
summary { cursor: pointer; }
.trial { border-left: 3px solid #ddd; margin: 0.6em 0 0.6em 0.4em; padding-left: 0.8em; }
.trial.failed { border-color: #e0a0a0; }
pre { white-space: pre-wrap; word-break: break-word; background: #f8f8f8; padding: 0.5em; margin: 0.3em 0; }
ul { margin: 0.3em 0; padding-left: 1.4em; }
.muted { color: #777; }
</style>
</head>
<body>
<h1>{{.Agent}}</h1>
<div class="summary">
<b>{{.Tally.Cases}}</b> cases: <span class="status pass">{{.Tally.Passed}} passed</span>
<span class="status fail">{{.Tally.Failed}} failed</span>
<span class="status flaky">{{.Tally.Flaky}} flaky</span>
<span class="status error">{{.Tally.Errors}} errors</span>;
{{.Tally.Trials}} trials{{if .Started}}, started {{.Started}} UTC{{end}}, in {{latency .Duration}}
</div>
<table>
<thead><tr><th>Case</th><th>Status</th><th>Passed</th><th>Grades</th><th>Tokens</th><th>Latency</th></tr></thead>
<tbody>
{{range .Cases}}<tr>
<td>
<details>
<summary>{{clean .Name}}{{if .Tags}} <span class="muted">{{join .Tags ", "}}</span>{{end}}</summary>
{{if .Error}}<pre>{{clean .Error}}</pre>{{end}}
{{range .Trials}}<div class="trial{{if not .Pass}} failed{{end}}">
<div><b>Trial {{.Trial}}</b> {{if .Pass}}passed{{else}}failed{{end}} <span class="muted">run {{.RunID}}; {{.Tokens}} tokens, {{.Turns}} turns, {{latency .Latency}}</span></div>
{{if .Error}}<pre>{{clean .Error}}</pre>{{end}}
{{if .Crash}}<div class="muted">worker stopped before journal commit {{.Crash}}</div>{{end}}
{{if .Notes}}<ul>{{range .Notes}}<li class="muted">{{clean .}}</li>{{end}}</ul>{{end}}
{{if .Grades}}<ul>
{{range .Grades}}<li><span class="status {{if .Pass}}pass{{else}}fail{{end}}">{{.Grader}} {{score .Value}}</span>{{if .Label}} {{.Label}}{{end}}{{if .Explanation}}: {{clean .Explanation}}{{end}}</li>
{{end}}</ul>{{end}}
{{if .Calls}}<div>Tool calls:</div>
<ul>
{{range .Calls}}<li><code>{{.Tool}} {{clean .Arguments}}</code>{{if .IsError}} <span class="status fail">error</span>{{end}}<pre>{{clean .Result}}</pre></li>
{{end}}</ul>{{end}}
<div>Answer:</div>
<pre>{{clean .Text}}</pre>
</div>
{{end}}</details>
</td>
<td><span class="status {{.Status}}">{{.Status}}</span></td>
<td class="num">{{if .Trials}}{{.Passed}}/{{len .Trials}} ({{percent .PassRate}}){{else}}-{{end}}</td>
<td>{{if .Trials}}{{.Grades}}{{else}}-{{end}}</td>
<td class="num">{{if .Trials}}{{.Tokens}}{{else}}-{{end}}</td>
<td class="num">{{if .Trials}}{{latency .Latency}}{{else}}-{{end}}</td>
</tr>
{{end}}</tbody>
</table>
</body>
</html>
`
