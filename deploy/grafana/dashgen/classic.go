package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/grafana/grafana-foundation-sdk/go/dashboardv2"
)

// The dashboards are defined with grafana-foundation-sdk's dashboardv2
// builder (its v1 dashboard builder is deprecated) but written as classic
// dashboard JSON, the model Grafana's file provisioning loads in every
// version: Grafana 12.1, which deploy/docker-compose.yml runs, does not
// provision the v2 model from files (later versions do, with the v2
// dashboard API switched on). classic turns a v2 dashboard into that
// JSON. It knows what oss2s3's dashboards use and fails on anything else
// rather than drop it.

// classicSchemaVersion is the classic schema the JSON follows (the one
// grafana-foundation-sdk v0.0.22's v1 model writes).
const classicSchemaVersion = 42

type classicDashboard struct {
	UID                  string             `json:"uid"`
	Title                string             `json:"title"`
	Description          string             `json:"description,omitempty"`
	Tags                 []string           `json:"tags"`
	Timezone             string             `json:"timezone"`
	Editable             bool               `json:"editable"`
	GraphTooltip         int                `json:"graphTooltip"`
	LiveNow              bool               `json:"liveNow,omitempty"`
	Preload              bool               `json:"preload,omitempty"`
	Time                 classicTime        `json:"time"`
	Timepicker           *classicTimepicker `json:"timepicker,omitempty"`
	WeekStart            string             `json:"weekStart,omitempty"`
	FiscalYearStartMonth int64              `json:"fiscalYearStartMonth"`
	Refresh              string             `json:"refresh,omitempty"`
	SchemaVersion        int                `json:"schemaVersion"`
	Version              int                `json:"version"`
	Revision             *uint16            `json:"revision,omitempty"`
	Panels               []any              `json:"panels"`
	Templating           struct {
		List []classicVariable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []any `json:"list"`
	} `json:"annotations"`
	// The link's JSON is the same in both models.
	Links []dashboardv2.DashboardLink `json:"links"`
}

type classicTime struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type classicTimepicker struct {
	RefreshIntervals []string `json:"refresh_intervals,omitempty"`
	Hidden           bool     `json:"hidden,omitempty"`
	NowDelay         string   `json:"nowDelay,omitempty"`
}

type classicRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type classicGridPos struct {
	H int64 `json:"h"`
	W int64 `json:"w"`
	X int64 `json:"x"`
	Y int64 `json:"y"`
}

type classicRow struct {
	Type      string         `json:"type"`
	Collapsed bool           `json:"collapsed"`
	Title     string         `json:"title"`
	GridPos   classicGridPos `json:"gridPos"`
	ID        int            `json:"id"`
	Panels    []any          `json:"panels"`
}

type classicPanel struct {
	Type        string                        `json:"type"`
	ID          int                           `json:"id"`
	Targets     []map[string]any              `json:"targets,omitempty"`
	Title       string                        `json:"title"`
	Description string                        `json:"description,omitempty"`
	Transparent bool                          `json:"transparent,omitempty"`
	Datasource  *classicRef                   `json:"datasource,omitempty"`
	GridPos     classicGridPos                `json:"gridPos"`
	Links       []dashboardv2.DataLink        `json:"links,omitempty"`
	Options     any                           `json:"options,omitempty"`
	FieldConfig dashboardv2.FieldConfigSource `json:"fieldConfig"` // the same JSON in both models
}

type classicVariable struct {
	Type             string                      `json:"type"`
	Name             string                      `json:"name"`
	Label            string                      `json:"label,omitempty"`
	Description      string                      `json:"description,omitempty"`
	Hide             int                         `json:"hide"`
	SkipURLSync      bool                        `json:"skipUrlSync"`
	Query            any                         `json:"query"`
	Datasource       *classicRef                 `json:"datasource,omitempty"`
	Current          *dashboardv2.VariableOption `json:"current,omitempty"`
	Multi            bool                        `json:"multi"`
	AllowCustomValue bool                        `json:"allowCustomValue"`
	Refresh          int                         `json:"refresh"`
	Sort             *int                        `json:"sort,omitempty"`
	IncludeAll       bool                        `json:"includeAll"`
	AllValue         string                      `json:"allValue,omitempty"`
	Regex            string                      `json:"regex"`
	Definition       string                      `json:"definition,omitempty"`
}

// defaultRefreshIntervals are the refresh picker's choices when a
// classic dashboard names none (and the SDK's v2 default).
var defaultRefreshIntervals = []string{"5s", "10s", "30s", "1m", "5m", "15m", "30m", "1h", "2h", "1d"}

// classic returns the classic model of d, whose uid (a v2 resource's
// metadata.name) is uid.
func classic(uid string, d dashboardv2.Dashboard) (*classicDashboard, error) {
	if len(d.Annotations) > 0 {
		return nil, errors.New("annotations are not converted")
	}
	if d.Preferences != nil {
		return nil, errors.New("preferences are not converted")
	}
	c := &classicDashboard{
		UID:                  uid,
		Title:                d.Title,
		Description:          deref(d.Description),
		Tags:                 d.Tags,
		Timezone:             deref(d.TimeSettings.Timezone),
		Editable:             d.Editable == nil || *d.Editable,
		LiveNow:              d.LiveNow != nil && *d.LiveNow,
		Preload:              d.Preload,
		Time:                 classicTime{From: d.TimeSettings.From, To: d.TimeSettings.To},
		FiscalYearStartMonth: d.TimeSettings.FiscalYearStartMonth,
		Refresh:              d.TimeSettings.AutoRefresh,
		SchemaVersion:        classicSchemaVersion,
		Version:              1,
		Revision:             d.Revision,
		Links:                d.Links,
	}
	c.Annotations.List = []any{}
	switch d.CursorSync {
	case dashboardv2.DashboardCursorSyncOff:
		c.GraphTooltip = 0
	case dashboardv2.DashboardCursorSyncCrosshair:
		c.GraphTooltip = 1
	case dashboardv2.DashboardCursorSyncTooltip:
		c.GraphTooltip = 2
	default:
		return nil, fmt.Errorf("cursor sync %q", d.CursorSync)
	}
	ts := d.TimeSettings
	if len(ts.QuickRanges) > 0 {
		return nil, errors.New("quick ranges are not converted")
	}
	if ts.WeekStart != nil {
		c.WeekStart = string(*ts.WeekStart)
	}
	tp := classicTimepicker{Hidden: ts.HideTimepicker, NowDelay: deref(ts.NowDelay)}
	if !slices.Equal(ts.AutoRefreshIntervals, defaultRefreshIntervals) {
		tp.RefreshIntervals = ts.AutoRefreshIntervals
	}
	if tp.Hidden || tp.NowDelay != "" || tp.RefreshIntervals != nil {
		c.Timepicker = &tp
	}
	c.Templating.List = []classicVariable{}
	for _, v := range d.Variables {
		cv, err := classicVar(v)
		if err != nil {
			return nil, err
		}
		c.Templating.List = append(c.Templating.List, cv)
	}
	panels, err := classicLayout(d)
	if err != nil {
		return nil, err
	}
	c.Panels = panels
	return c, nil
}

// classicLayout places the panels on the classic grid, in order: a rows
// layout's rows one below the other, each followed by its panels (inside
// it when it is collapsed), or a grid's panels as they are. Rows and
// panels are numbered in that order, as Grafana's editor would.
func classicLayout(d dashboardv2.Dashboard) ([]any, error) {
	var out []any
	id := 0
	place := func(items []dashboardv2.GridLayoutItemKind, top int64) ([]any, int64, error) {
		var ps []any
		bottom := top
		for _, it := range items {
			s := it.Spec
			if s.Repeat != nil {
				return nil, 0, fmt.Errorf("%s: repeats are not converted", s.Element.Name)
			}
			el, ok := d.Elements[s.Element.Name]
			if !ok || el.PanelKind == nil {
				return nil, 0, fmt.Errorf("%s: no such panel (library panels are not converted)", s.Element.Name)
			}
			id++
			p, err := classicPanelOf(el.PanelKind.Spec, id)
			if err != nil {
				return nil, 0, fmt.Errorf("panel %q: %w", el.PanelKind.Spec.Title, err)
			}
			p.GridPos = classicGridPos{H: s.Height, W: s.Width, X: s.X, Y: top + s.Y}
			ps = append(ps, p)
			bottom = max(bottom, p.GridPos.Y+s.Height)
		}
		return ps, bottom, nil
	}
	l := d.Layout
	switch {
	case l.GridLayoutKind != nil:
		ps, _, err := place(l.GridLayoutKind.Spec.Items, 0)
		return ps, err
	case l.RowsLayoutKind != nil:
		var y int64
		for _, r := range l.RowsLayoutKind.Spec.Rows {
			s := r.Spec
			title := deref(s.Title)
			switch {
			case s.Layout.GridLayoutKind == nil:
				return nil, fmt.Errorf("row %q: only a grid layout in a row is converted", title)
			case deref(s.HideHeader), deref(s.FillScreen), s.Repeat != nil, s.ConditionalRendering != nil, len(s.Variables) > 0:
				return nil, fmt.Errorf("row %q: hidden headers, fill screen, repeats, conditional rendering and row variables are not converted", title)
			}
			id++
			row := &classicRow{Type: "row", Collapsed: deref(s.Collapse), Title: title,
				GridPos: classicGridPos{H: 1, W: gridWidth, Y: y}, ID: id, Panels: []any{}}
			ps, bottom, err := place(s.Layout.GridLayoutKind.Spec.Items, y+1)
			if err != nil {
				return nil, err
			}
			out = append(out, row)
			if row.Collapsed {
				row.Panels = ps
				y++
				continue
			}
			out = append(out, ps...)
			y = bottom
		}
		return out, nil
	default:
		return nil, errors.New("only grid and rows layouts are converted")
	}
}

// classicPanelOf is a v2 panel in the classic model, but for its place.
func classicPanelOf(s dashboardv2.PanelSpec, id int) (*classicPanel, error) {
	q := s.Data.Spec
	if len(q.Transformations) > 0 || q.QueryOptions != (dashboardv2.QueryOptionsSpec{}) {
		return nil, errors.New("transformations and query options are not converted")
	}
	if s.Subtitle != nil {
		return nil, errors.New("subtitles are not converted")
	}
	p := &classicPanel{
		Type:        s.VizConfig.Group,
		ID:          id,
		Title:       s.Title,
		Description: deref(s.Description),
		Transparent: deref(s.Transparent),
		Links:       s.Links,
		Options:     s.VizConfig.Spec.Options,
		FieldConfig: s.VizConfig.Spec.FieldConfig,
	}
	if p.FieldConfig.Overrides == nil {
		p.FieldConfig.Overrides = []dashboardv2.Dashboardv2FieldConfigSourceOverrides{}
	}
	for _, pq := range q.Queries {
		t, ref, err := classicTarget(pq.Spec.Query)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", pq.Spec.RefId, err)
		}
		t["refId"] = pq.Spec.RefId
		if pq.Spec.Hidden {
			t["hide"] = true
		}
		p.Targets = append(p.Targets, t)
		// A classic panel names one datasource for its queries.
		switch {
		case p.Datasource == nil:
			p.Datasource = ref
		case ref == nil || *ref != *p.Datasource:
			return nil, errors.New("queries on different datasources are not converted")
		}
	}
	return p, nil
}

// classicTarget is a v2 query's spec with its datasource: a classic
// panel's target, or a query variable's query.
func classicTarget(q dashboardv2.DataQueryKind) (map[string]any, *classicRef, error) {
	b, err := json.Marshal(q.Spec)
	if err != nil {
		return nil, nil, err
	}
	var t map[string]any
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, nil, fmt.Errorf("the spec of a %s query is not an object: %w", q.Group, err)
	}
	if t == nil {
		t = map[string]any{}
	}
	var ref *classicRef
	if q.Datasource != nil && q.Datasource.Name != nil {
		ref = &classicRef{Type: q.Group, UID: *q.Datasource.Name}
		t["datasource"] = ref
	}
	return t, ref, nil
}

// The classic model numbers what v2 names.
var (
	classicHide    = map[dashboardv2.VariableHide]int{dashboardv2.VariableHideDontHide: 0, dashboardv2.VariableHideHideLabel: 1, dashboardv2.VariableHideHideVariable: 2}
	classicRefresh = map[dashboardv2.VariableRefresh]int{dashboardv2.VariableRefreshNever: 0, dashboardv2.VariableRefreshOnDashboardLoad: 1, dashboardv2.VariableRefreshOnTimeRangeChanged: 2}
	classicSort    = map[dashboardv2.VariableSort]int{
		dashboardv2.VariableSortDisabled: 0, dashboardv2.VariableSortAlphabeticalAsc: 1, dashboardv2.VariableSortAlphabeticalDesc: 2,
		dashboardv2.VariableSortNumericalAsc: 3, dashboardv2.VariableSortNumericalDesc: 4,
		dashboardv2.VariableSortAlphabeticalCaseInsensitiveAsc: 5, dashboardv2.VariableSortAlphabeticalCaseInsensitiveDesc: 6,
		dashboardv2.VariableSortNaturalAsc: 7, dashboardv2.VariableSortNaturalDesc: 8,
	}
)

// classicVar converts the query and datasource variables.
func classicVar(v dashboardv2.VariableKind) (classicVariable, error) {
	switch {
	case v.QueryVariableKind != nil:
		s := v.QueryVariableKind.Spec
		if len(s.Options) > 0 || len(s.StaticOptions) > 0 || s.Placeholder != nil || s.Origin != nil ||
			(s.RegexApplyTo != nil && *s.RegexApplyTo != dashboardv2.VariableRegexApplyToValue) {
			return classicVariable{}, fmt.Errorf("variable %s: options, static options, placeholders, origins and regexes on the text are not converted", s.Name)
		}
		query, ref, err := classicTarget(s.Query)
		if err != nil {
			return classicVariable{}, fmt.Errorf("variable %s: %w", s.Name, err)
		}
		delete(query, "datasource")
		cv := classicVariable{Type: "query", Name: s.Name, Label: deref(s.Label), Description: deref(s.Description),
			SkipURLSync: s.SkipUrlSync, Query: query, Datasource: ref, Current: current(s.Current), Multi: s.Multi,
			AllowCustomValue: s.AllowCustomValue, IncludeAll: s.IncludeAll, AllValue: deref(s.AllValue),
			Regex: s.Regex, Definition: deref(s.Definition)}
		if legacy, ok := query["__legacyStringValue"]; ok {
			cv.Query = legacy
		}
		sort, ok := classicSort[s.Sort]
		if !ok {
			return classicVariable{}, fmt.Errorf("variable %s: sort %q", s.Name, s.Sort)
		}
		cv.Sort = &sort
		return cv, enums(&cv, s.Hide, s.Refresh)
	case v.DatasourceVariableKind != nil:
		s := v.DatasourceVariableKind.Spec
		if len(s.Options) > 0 || s.Origin != nil {
			return classicVariable{}, fmt.Errorf("variable %s: options and origins are not converted", s.Name)
		}
		cv := classicVariable{Type: "datasource", Name: s.Name, Label: deref(s.Label), Description: deref(s.Description),
			SkipURLSync: s.SkipUrlSync, Query: s.PluginId, Current: current(s.Current), Multi: s.Multi,
			AllowCustomValue: s.AllowCustomValue, IncludeAll: s.IncludeAll, AllValue: deref(s.AllValue), Regex: s.Regex}
		return cv, enums(&cv, s.Hide, s.Refresh)
	default:
		return classicVariable{}, errors.New("only query and datasource variables are converted")
	}
}

func enums(cv *classicVariable, hide dashboardv2.VariableHide, refresh dashboardv2.VariableRefresh) error {
	var ok bool
	if cv.Hide, ok = classicHide[hide]; !ok {
		return fmt.Errorf("variable %s: hide %q", cv.Name, hide)
	}
	if cv.Refresh, ok = classicRefresh[refresh]; !ok {
		return fmt.Errorf("variable %s: refresh %q", cv.Name, refresh)
	}
	return nil
}

// current is a variable's current value, nil when the builder left it
// empty (Grafana then picks it when the dashboard loads).
func current(o dashboardv2.VariableOption) *dashboardv2.VariableOption {
	if deref(o.Text.String) == "" && deref(o.Value.String) == "" && o.Text.ArrayOfString == nil && o.Value.ArrayOfString == nil {
		return nil
	}
	return &o
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
