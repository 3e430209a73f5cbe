package handlers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"
)

// Reconciler starts reconcile runs and answers for them.
type Reconciler interface {
	// Start starts a run of task as req asks. Its errors: one wrapping
	// ErrNoTask when no task has that name, a *ReconcileRunning when the
	// task has a run in progress.
	Start(ctx context.Context, task string, req ReconcileRequest) (ReconcileRun, error)
	// Get returns the run id, or an error wrapping ErrNoRun.
	Get(ctx context.Context, id string) (ReconcileRun, error)
	// WriteReport writes the run's report, one JSON object a line.
	WriteReport(ctx context.Context, id string, w io.Writer) error
	// List returns the runs of task ("" for every task), newest first,
	// at most limit.
	List(ctx context.Context, task string, limit int) ([]ReconcileRun, error)
}

// ReconcileRun is a run as the Reconciler shows it: ID names it, State is
// its progress and outcome, the body of GET /v1/reconciles/{id} (its JSON
// encoding).
type ReconcileRun struct {
	ID    string
	State any
}

// The errors of a Reconciler the answers depend on.
var (
	ErrNoTask = errors.New("no such task")
	ErrNoRun  = errors.New("no such reconcile run")
)

// ReconcileRunning means the task already has a run in progress (on any
// replica); ID names it.
type ReconcileRunning struct{ ID string }

func (e *ReconcileRunning) Error() string {
	return "a reconcile run of this task is in progress: " + e.ID
}

// ReconcileModes and ReconcileVerifies are the values the API takes for
// mode and verify (besides "", the task's setting); the reconciler knows
// each (server's TestTheAPISpeaksTheReconcilersWords).
var (
	ReconcileModes    = []string{"report", "copy", "sync", "copy_all"}
	ReconcileVerifies = []string{"size", "etag", "content"}
)

// ReconcileRequest is the body of POST /v1/tasks/{task}/reconcile; every
// field is optional (the task's reconcile settings, then copy mode).
type ReconcileRequest struct {
	Mode       string   `json:"mode"`
	Verify     string   `json:"verify"`
	MaxDeletes int      `json:"max_deletes"`
	Prefixes   []string `json:"prefixes"`
}

// Valid says what is wrong with the request, if anything.
func (r ReconcileRequest) Valid() error {
	if r.Mode != "" && !slices.Contains(ReconcileModes, r.Mode) {
		return errors.New("mode: want " + joinOr(ReconcileModes))
	}
	if r.Verify != "" && !slices.Contains(ReconcileVerifies, r.Verify) {
		return errors.New("verify: want " + joinOr(ReconcileVerifies))
	}
	if r.MaxDeletes < 0 {
		return errors.New("max_deletes: want 0 (the task's cap) or more")
	}
	if len(r.Prefixes) > 100_000 {
		return errors.New("prefixes: at most 100000")
	}
	for _, p := range r.Prefixes {
		if p == "" || len(p) > 1023 {
			return errors.New("prefixes: each must be 1 to 1023 bytes")
		}
	}
	return nil
}

// ReconcileStarted is the answer of POST /v1/tasks/{task}/reconcile: 202
// with the new run, or 409 with the id of the run in progress.
type ReconcileStarted struct {
	ID      string `json:"id"`
	Message string `json:"message,omitempty"`
	Run     any    `json:"run,omitempty"` // the run's State
}

func handleReconcileStart(r Reconciler) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "this process runs no reconciler")
		}
		req, err := decodeJSON[ReconcileRequest](c, maxAdminBody)
		if err != nil {
			return err
		}
		run, err := r.Start(c.Request().Context(), c.Param("task"), req)
		var running *ReconcileRunning
		switch {
		case errors.As(err, &running):
			return c.JSON(http.StatusConflict, ReconcileStarted{ID: running.ID, Message: "a reconcile run of this task is in progress"})
		case errors.Is(err, ErrNoTask):
			return echo.NewHTTPError(http.StatusNotFound, "no task named "+c.Param("task"))
		case err != nil:
			return echo.NewHTTPError(http.StatusServiceUnavailable, "starting the run: "+err.Error())
		}
		return c.JSON(http.StatusAccepted, ReconcileStarted{ID: run.ID, Run: run.State})
	}
}

func handleReconcileGet(r Reconciler) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "this process runs no reconciler")
		}
		run, err := r.Get(c.Request().Context(), c.Param("id"))
		if errors.Is(err, ErrNoRun) {
			return echo.NewHTTPError(http.StatusNotFound, "no reconcile run "+c.Param("id"))
		}
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		return c.JSON(http.StatusOK, run.State)
	}
}

func handleReconcileReport(r Reconciler) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "this process runs no reconciler")
		}
		id := c.Param("id")
		if _, err := r.Get(c.Request().Context(), id); errors.Is(err, ErrNoRun) {
			return echo.NewHTTPError(http.StatusNotFound, "no reconcile run "+id)
		} else if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		res := c.Response()
		res.Header().Set(echo.HeaderContentType, "application/x-ndjson")
		res.WriteHeader(http.StatusOK)
		w := bufio.NewWriter(res)
		if err := r.WriteReport(c.Request().Context(), id, w); err != nil {
			c.Logger().Error(err)
			return nil // the status is sent; the body ends short
		}
		return w.Flush()
	}
}

// Limits of GET /v1/reconciles.
const (
	DefaultRunsListed = 20
	MaxRunsListed     = 100
)

// handleReconcileList answers GET /v1/reconciles?task=&limit=: the runs,
// newest first, as {"runs": [...]} (each as GET /v1/reconciles/{id} shows
// it).
func handleReconcileList(r Reconciler) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "this process runs no reconciler")
		}
		limit := DefaultRunsListed
		if v := c.QueryParam("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxRunsListed {
				return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("limit: want a whole number from 1 to %d", MaxRunsListed))
			}
			limit = n
		}
		runs, err := r.List(c.Request().Context(), c.QueryParam("task"), limit)
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		states := make([]any, len(runs))
		for i, run := range runs {
			states[i] = run.State
		}
		return c.JSON(http.StatusOK, map[string]any{"runs": states})
	}
}
