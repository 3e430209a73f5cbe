package main

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// prom is the dashboard's datasource variable: every panel and query
// reads the Prometheus chosen there (deploy_test.go checks it).
var prom = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// newDashboard starts a dashboard with what all of oss2s3's share: the
// datasource variable, the oss2s3 tag and a link menu to the others.
func newDashboard(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"oss2s3"}).
		Version(1).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Time("now-6h", "now").
		Refresh("30s").
		Timezone("").
		Link(dashboard.NewDashboardLinkBuilder("oss2s3").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"oss2s3"}).
			AsDropdown(true)).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Prometheus").
			Type("prometheus").
			Hide(dashboard.VariableHideDontHide).
			Regex(""))
}

// taskVariable is the multi-valued task picker, listing the values of
// series' task label.
func taskVariable(series string) *dashboard.QueryVariableBuilder {
	q := "label_values(" + series + ", task)"
	return dashboard.NewQueryVariableBuilder("task").
		Label("Task").
		Datasource(prom).
		Query(dashboard.StringOrMap{Map: map[string]any{"query": q, "refId": "task"}}).
		Definition(q).
		Hide(dashboard.VariableHideDontHide).
		IncludeAll(true).
		Multi(true).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Regex("")
}

func row(title string) *dashboard.RowBuilder {
	return dashboard.NewRowBuilder(title)
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

// targets turns queries into Prometheus targets A, B, ... on the
// datasource variable.
func targets(qs []query) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(qs))
	for i, x := range qs {
		out[i] = prometheus.NewDataqueryBuilder().
			RefId(string(rune('A' + i))).
			Datasource(prom).
			Expr(x.expr).
			LegendFormat(x.legend)
	}
	return out
}

// single is a stat panel of the last value, 4 units high; callers set its
// width.
func single(title, description, unit string, qs ...query) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(prom).
		Unit(unit).
		Height(4).
		Targets(targets(qs)).
		ReduceOptions(common.NewReduceDataOptionsBuilder().
			Calcs([]string{"lastNotNull"}).
			Fields("").
			Values(false)).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeArea).
		TextMode(common.BigValueTextModeAuto).
		Orientation(common.VizOrientationAuto)
}

// coloured colours a stat panel's background by absolute thresholds: the
// first step's colour from minus infinity, then each step's from its value.
func coloured(p *stat.PanelBuilder, base string, steps ...dashboard.Threshold) *stat.PanelBuilder {
	all := append([]dashboard.Threshold{{Color: base}}, steps...)
	return p.
		Thresholds(dashboard.NewThresholdsConfigBuilder().
			Mode(dashboard.ThresholdsModeAbsolute).
			Steps(all)).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds))
}

func from(v float64, color string) dashboard.Threshold {
	return dashboard.Threshold{Value: cog.ToPtr(v), Color: color}
}

// graph is a time series panel 8 units high and 8 wide, lines not
// stacked; callers change what differs.
func graph(title, description, unit string, qs ...query) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(prom).
		Unit(unit).
		Height(8).
		Span(8).
		Targets(targets(qs)).
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
			Sort(common.SortOrderDescending))
}

// stacked stacks a graph's series on one another.
func stacked(p *timeseries.PanelBuilder) *timeseries.PanelBuilder {
	return p.Stacking(stacking(common.StackingModeNormal))
}

func stacking(mode common.StackingMode) *common.StackingConfigBuilder {
	return common.NewStackingConfigBuilder().Mode(mode).Group("A")
}
