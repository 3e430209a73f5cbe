package main

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboardv2"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// promVar is the dashboard's datasource variable: every panel and query
// reads the Prometheus chosen there (deploy_test.go checks it).
const promVar = "${datasource}"

// gridWidth is the width of Grafana's grid: a tile of span 24 is a line.
const gridWidth = 24

// board is one dashboard in the making: grafana-foundation-sdk's
// dashboardv2 builder, the uid (a v2 dashboard carries it in its
// resource's metadata, not in its spec) and its rows, laid out as
// Grafana's editor would lay out the tiles given in order.
type board struct {
	uid    string
	dash   *dashboardv2.DashboardBuilder
	rows   *dashboardv2.RowsBuilder
	panels int
}

// newBoard starts a dashboard with what all of oss2s3's share: the
// datasource variable, the oss2s3 tag and a link menu to the others.
func newBoard(uid, title, description string) *board {
	return &board{
		uid: uid,
		dash: dashboardv2.NewDashboardBuilder(title).
			Description(description).
			Tags([]string{"oss2s3"}).
			Editable(true).
			CursorSync(dashboardv2.DashboardCursorSyncCrosshair).
			TimeSettings(dashboardv2.NewTimeSettingsBuilder().
				From("now-6h").
				To("now").
				AutoRefresh("30s").
				Timezone("")).
			Links([]cog.Builder[dashboardv2.DashboardLink]{dashboardv2.NewDashboardLinkBuilder().
				Title("oss2s3").
				Type(dashboardv2.DashboardLinkTypeDashboards).
				Tags([]string{"oss2s3"}).
				AsDropdown(true)}).
			DatasourceVariable(dashboardv2.NewDatasourceVariableBuilder("datasource").
				Label("Prometheus").
				PluginId("prometheus").
				Refresh(dashboardv2.VariableRefreshOnDashboardLoad).
				Hide(dashboardv2.VariableHideDontHide).
				Regex("")),
		rows: dashboardv2.NewRowsBuilder(),
	}
}

// taskVariable adds the multi-valued task picker, listing the values of
// series' task label.
func (b *board) taskVariable(series string) *board {
	q := "label_values(" + series + ", task)"
	b.dash.QueryVariable(dashboardv2.NewQueryVariableBuilder("task").
		Label("Task").
		Query(variableQuery{expr: q, refID: "task"}).
		Definition(q).
		Hide(dashboardv2.VariableHideDontHide).
		IncludeAll(true).
		Multi(true).
		Refresh(dashboardv2.VariableRefreshOnTimeRangeChanged).
		Sort(dashboardv2.VariableSortAlphabeticalAsc).
		Regex(""))
	return b
}

// variableQuery is a Prometheus variable query ({query, refId}, what
// Grafana's Prometheus variable editor saves). The SDK's prometheus
// builder makes panel queries (expr) only.
type variableQuery struct{ expr, refID string }

func (v variableQuery) Build() (dashboardv2.DataQueryKind, error) {
	q := dashboardv2.NewDataQueryKind()
	q.Group = "prometheus"
	q.Datasource = &dashboardv2.Dashboardv2DataQueryKindDatasource{Name: cog.ToPtr(promVar)}
	q.Spec = map[string]any{"query": v.expr, "refId": v.refID}
	return *q, nil
}

// row adds a row of tiles: they fill its lines left to right by their
// span and wrap to the next line when the span would pass the width.
func (b *board) row(title string, tiles ...*tile) *board {
	grid := dashboardv2.NewGridBuilder()
	var x, y, lineHeight int64
	for _, t := range tiles {
		if x+t.w > gridWidth {
			x, y, lineHeight = 0, y+lineHeight, 0
		}
		b.panels++
		name := fmt.Sprintf("panel-%d", b.panels)
		b.dash.Panel(name, t.panel(b.panels))
		grid.Item(dashboardv2.NewGridItemBuilder().Name(name).X(x).Y(y).Width(t.w).Height(t.h))
		x += t.w
		lineHeight = max(lineHeight, t.h)
	}
	b.rows.Row(dashboardv2.NewRowBuilder().Title(title).Collapse(false).GridLayout(grid))
	return b
}

func (b *board) build() (dashboardv2.Dashboard, error) {
	return b.dash.RowsLayout(b.rows).Build()
}

// query is one PromQL expression of a panel and its legend.
type query struct{ expr, legend string }

func q(expr, legend string) query { return query{expr, legend} }

// quantiles are the median and the 99th percentile of a histogram:
// histogram_quantile of sum by (by) (rate(buckets[window])), with the
// legends "p50" and "p99", each followed by legend if it is not empty.
func quantiles(by, buckets, window, legend string) []query {
	var qs []query
	for _, p := range []struct{ phi, name string }{{"0.5", "p50"}, {"0.99", "p99"}} {
		qs = append(qs, q(fmt.Sprintf("histogram_quantile(%s, sum by (%s) (rate(%s[%s])))", p.phi, by, buckets, window),
			strings.TrimSpace(p.name+" "+legend)))
	}
	return qs
}

// tile is a panel and its size on the grid. Its visualization is a stat
// or a time series, kept apart so that coloured and stacked can change it.
type tile struct {
	title, description string
	queries            []query
	stat               *stat.VisualizationV2Builder
	series             *timeseries.VisualizationV2Builder
	w, h               int64
}

// span sets the tile's width (24 is the full width).
func (t *tile) span(w int64) *tile { t.w = w; return t }

func (t *tile) height(h int64) *tile { t.h = h; return t }

// panel builds the tile's panel: its Prometheus queries A, B, ... on the
// datasource variable, and its visualization.
func (t *tile) panel(id int) *dashboardv2.PanelBuilder {
	data := dashboardv2.NewQueryGroupBuilder()
	for i, x := range t.queries {
		data.Target(dashboardv2.NewTargetBuilder().
			RefId(string(rune('A' + i))).
			Query(prometheus.NewQueryV2Builder().
				Datasource(dashboardv2.NewDashboardv2DataQueryKindDatasourceBuilder().Name(promVar)).
				Expr(x.expr).
				LegendFormat(x.legend)))
	}
	p := dashboardv2.NewPanelBuilder().
		Id(float64(id)).
		Title(t.title).
		Description(t.description).
		Data(data)
	if t.stat != nil {
		return p.Visualization(t.stat)
	}
	return p.Visualization(t.series)
}

// single is a stat panel of the last value, 4 units high and 12 wide;
// callers set its width.
func single(title, description, unit string, qs ...query) *tile {
	return &tile{title: title, description: description, queries: qs, w: 12, h: 4,
		stat: stat.NewVisualizationV2Builder().
			Unit(unit).
			ReduceOptions(common.NewReduceDataOptionsBuilder().
				Calcs([]string{"lastNotNull"}).
				Fields("").
				Values(false)).
			ColorMode(common.BigValueColorModeBackground).
			GraphMode(common.BigValueGraphModeArea).
			TextMode(common.BigValueTextModeAuto).
			Orientation(common.VizOrientationAuto)}
}

// coloured colours a stat panel's background by absolute thresholds: the
// first step's colour from minus infinity, then each step's from its value.
func coloured(t *tile, base string, steps ...dashboardv2.Threshold) *tile {
	all := append([]dashboardv2.Threshold{{Color: base}}, steps...)
	t.stat.
		Thresholds(dashboardv2.NewThresholdsConfigBuilder().
			Mode(dashboardv2.ThresholdsModeAbsolute).
			Steps(all)).
		ColorScheme(dashboardv2.NewFieldColorBuilder().Mode(dashboardv2.FieldColorModeIdThresholds))
	return t
}

func from(v float64, color string) dashboardv2.Threshold {
	return dashboardv2.Threshold{Value: cog.ToPtr(v), Color: color}
}

// graph is a time series panel 8 units high and 8 wide, lines not
// stacked; callers change what differs.
func graph(title, description, unit string, qs ...query) *tile {
	return &tile{title: title, description: description, queries: qs, w: 8, h: 8,
		series: timeseries.NewVisualizationV2Builder().
			Unit(unit).
			DrawStyle(common.GraphDrawStyleLine).
			LineWidth(1).
			FillOpacity(10).
			Stacking(stacking(common.StackingModeNone)).
			Legend(common.NewVizLegendOptionsBuilder().
				DisplayMode(common.LegendDisplayModeList).
				Placement(common.LegendPlacementBottom).
				ShowLegend(true)).
			Tooltip(common.NewVizTooltipOptionsBuilder().
				Mode(common.TooltipDisplayModeMulti).
				Sort(common.SortOrderDescending))}
}

// stacked stacks a graph's series on one another.
func stacked(t *tile) *tile {
	t.series.Stacking(stacking(common.StackingModeNormal))
	return t
}

func stacking(mode common.StackingMode) *common.StackingConfigBuilder {
	return common.NewStackingConfigBuilder().Mode(mode).Group("A")
}

// rightAxis gives the series of query refID its own unit, on an axis at
// the right, for a graph that shows two kinds of value.
func rightAxis(t *tile, refID, unit string) *tile {
	t.series.OverrideByQuery(refID, []dashboardv2.DynamicConfigValue{
		{Id: "unit", Value: unit},
		{Id: "custom.axisPlacement", Value: string(common.AxisPlacementRight)},
	})
	return t
}
