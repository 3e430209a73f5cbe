package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/dashboardv2"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// TestDashboardsAreGenerated fails when a committed dashboard was edited
// without its Go definition, or the other way round.
func TestDashboardsAreGenerated(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := run([]string{"-check", "-dir", filepath.Join("..", "dashboards")}, &out, io.Discard); err != nil {
		t.Fatalf("%v\nregenerate them: go run ./deploy/grafana/dashgen", err)
	}
}

func TestDashgenCheckFindsStaleFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string)
		want   string
	}{
		{"EditedFile", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "oss2s3-task.json")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			edited := strings.Replace(string(b), `"Jobs queued"`, `"Jobs waiting"`, 1)
			if edited == string(b) {
				t.Fatal("the task dashboard has no panel titled Jobs queued to edit")
			}
			if err := os.WriteFile(p, []byte(edited), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "oss2s3-task.json"},
		{"MissingFile", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "oss2s3-reconcile.json")); err != nil {
				t.Fatal(err)
			}
		}, "oss2s3-reconcile.json"},
		{"HandWrittenFile", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "extra.json"), []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "extra.json (not generated)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := run([]string{"-dir", dir}, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			if err := run([]string{"-check", "-dir", dir}, io.Discard, io.Discard); err != nil {
				t.Fatalf("fresh output is stale: %v", err)
			}
			tc.change(t, dir)
			err := run([]string{"-check", "-dir", dir}, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// classicFile is the part of a written dashboard these tests read.
type classicFile struct {
	Panels []struct {
		Type    string `json:"type"`
		ID      int    `json:"id"`
		Title   string `json:"title"`
		GridPos struct{ H, W, X, Y int64 }
		Targets []struct {
			Expr         string `json:"expr"`
			LegendFormat string `json:"legendFormat"`
			RefID        string `json:"refId"`
			Datasource   struct{ Type, UID string }
		} `json:"targets"`
		FieldConfig struct {
			Defaults struct {
				Unit string `json:"unit"`
			} `json:"defaults"`
			Overrides []struct {
				Matcher struct {
					ID      string `json:"id"`
					Options string `json:"options"`
				} `json:"matcher"`
				Properties []struct {
					ID    string `json:"id"`
					Value any    `json:"value"`
				} `json:"properties"`
			} `json:"overrides"`
		} `json:"fieldConfig"`
	} `json:"panels"`
}

func rendered(t *testing.T) map[string]classicFile {
	t.Helper()
	files, err := render()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]classicFile{}
	for name, b := range files {
		var f classicFile
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = f
	}
	return out
}

// TestClassicKeepsEveryPanel compares each v2 definition with the classic
// JSON written from it: every panel once, with its kind, unit and queries.
func TestClassicKeepsEveryPanel(t *testing.T) {
	t.Parallel()
	files := rendered(t)
	for name, b := range dashboards() {
		d, err := b.build()
		if err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for _, el := range d.Elements {
			s := el.PanelKind.Spec
			desc := fmt.Sprintf("%s %s %s", s.VizConfig.Group, s.Title, deref(s.VizConfig.Spec.FieldConfig.Defaults.Unit))
			for _, pq := range s.Data.Spec.Queries {
				spec := pq.Spec.Query.Spec.(*prometheus.Dataquery)
				desc += fmt.Sprintf(" | %s %s %s %s", pq.Spec.RefId, *pq.Spec.Query.Datasource.Name, spec.Expr, deref(spec.LegendFormat))
			}
			want = append(want, desc)
		}
		rows := 0
		for _, p := range files[name].Panels {
			if p.Type == "row" {
				rows++
				continue
			}
			desc := fmt.Sprintf("%s %s %s", p.Type, p.Title, p.FieldConfig.Defaults.Unit)
			for _, tg := range p.Targets {
				if tg.Datasource.Type != "prometheus" {
					t.Errorf("%s: panel %q: query %s on a %q datasource", name, p.Title, tg.RefID, tg.Datasource.Type)
				}
				desc += fmt.Sprintf(" | %s %s %s %s", tg.RefID, tg.Datasource.UID, tg.Expr, tg.LegendFormat)
			}
			got = append(got, desc)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the classic JSON's panels\n%s\nare not the definition's\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if n := len(d.Layout.RowsLayoutKind.Spec.Rows); rows != n {
			t.Errorf("%s: %d rows written, %d defined", name, rows, n)
		}
	}
}

// TestPanelsTileTheGrid checks the layout: every panel inside the grid's
// width, below its row, overlapping no other; ids unique.
func TestPanelsTileTheGrid(t *testing.T) {
	t.Parallel()
	for name, f := range rendered(t) {
		ids := map[int]bool{}
		var rowY int64 = -1
		type box struct{ x, y, w, h int64 }
		var placed []box
		for _, p := range f.Panels {
			g := p.GridPos
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("%s: panel %q: id %d is not unique", name, p.Title, p.ID)
			}
			ids[p.ID] = true
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > gridWidth {
				t.Errorf("%s: panel %q at %+v is not inside the grid", name, p.Title, g)
			}
			if p.Type == "row" {
				if g.Y <= rowY || g.X != 0 || g.W != gridWidth || g.H != 1 {
					t.Errorf("%s: row %q at %+v", name, p.Title, g)
				}
				rowY = g.Y
			} else if g.Y <= rowY || rowY < 0 {
				t.Errorf("%s: panel %q at %+v is not below its row (at %d)", name, p.Title, g, rowY)
			}
			b := box{g.X, g.Y, g.W, g.H}
			for _, o := range placed {
				if b.x < o.x+o.w && o.x < b.x+b.w && b.y < o.y+o.h && o.y < b.y+b.h {
					t.Errorf("%s: panel %q at %+v overlaps another at %+v", name, p.Title, g, o)
				}
			}
			placed = append(placed, b)
		}
	}
}

// TestReconcileShowsProgress: the reconcile dashboard shows the running
// runs' progress (a ratio) and time left (seconds, on its own axis), the
// highest of the replicas that report them.
func TestReconcileShowsProgress(t *testing.T) {
	t.Parallel()
	for _, p := range rendered(t)["oss2s3-reconcile.json"].Panels {
		if p.Title != "Running runs" {
			continue
		}
		if len(p.Targets) != 2 || p.FieldConfig.Defaults.Unit != "percentunit" ||
			!strings.HasPrefix(p.Targets[0].Expr, "max by (task) (oss2s3_reconcile_progress_ratio{") ||
			!strings.HasPrefix(p.Targets[1].Expr, "max by (task) (oss2s3_reconcile_eta_seconds{") {
			t.Fatalf("the progress panel's queries or unit: %+v", p)
		}
		o := p.FieldConfig.Overrides
		if len(o) != 1 || o[0].Matcher.Options != p.Targets[1].RefID || len(o[0].Properties) == 0 ||
			o[0].Properties[0].ID != "unit" || o[0].Properties[0].Value != "s" {
			t.Fatalf("the time left is not in seconds: %+v", o)
		}
		return
	}
	t.Fatal("the reconcile dashboard has no panel Running runs")
}

// TestClassicRefusesWhatItDoesNotConvert: what the classic conversion
// does not know fails the generator rather than vanish from the file.
func TestClassicRefusesWhatItDoesNotConvert(t *testing.T) {
	t.Parallel()
	base := func() *board {
		return newBoard("x", "X", "x").row("R", graph("G", "g", "s", q("up", "")))
	}
	for _, tc := range []struct {
		name   string
		change func(b *board)
		want   string
	}{
		{"TabsLayout", func(b *board) {
			b.rows = nil
			b.dash.TabsLayout(dashboardv2.NewTabsBuilder())
		}, "only grid and rows layouts"},
		{"Transformation", func(b *board) {
			b.dash.Panel("panel-1", dashboardv2.NewPanelBuilder().Title("G").
				Data(dashboardv2.NewQueryGroupBuilder().Transformation(dashboardv2.NewTransformationBuilder().Group("merge"))).
				Visualization(timeseries.NewVisualizationV2Builder()))
		}, "transformations"},
		{"TextVariable", func(b *board) {
			b.dash.TextVariable(dashboardv2.NewTextVariableBuilder("t"))
		}, "only query and datasource variables"},
		{"HiddenRowHeader", func(b *board) {
			b.rows.Row(dashboardv2.NewRowBuilder().Title("H").HideHeader(true).GridLayout(dashboardv2.NewGridBuilder()))
		}, "hidden headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := base()
			tc.change(b)
			var d dashboardv2.Dashboard
			var err error
			if b.rows == nil {
				d, err = b.dash.Build()
			} else {
				d, err = b.build()
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := classic(b.uid, d); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("classic = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
