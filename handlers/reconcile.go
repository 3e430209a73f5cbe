package handlers

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/oss2s3/oss2s3/transfer/reconcile"
)

// Reconciler starts reconcile runs and answers for them (reconcile.Service).
type Reconciler interface {
	Start(ctx context.Context, task string, o reconcile.Options, trigger string) (reconcile.RunState, error)
	Get(ctx context.Context, id string) (reconcile.RunState, error)
	WriteReport(ctx context.Context, id string, w io.Writer) error
}

// ReconcileRequest is the body of POST /v1/tasks/{task}/reconcile; every
// field is optional (the task's reconcile settings, then copy mode).
type ReconcileRequest struct {
	Mode       string   `json:"mode"`
	Verify     string   `json:"verify"`
	MaxDeletes int      `json:"max_deletes"`
	Prefixes   []string `json:"prefixes"`
}

// ReconcileStarted is the answer of POST /v1/tasks/{task}/reconcile: 202
// with the new run, or 409 with the id of the run in progress.
type ReconcileStarted struct {
	ID      string              `json:"id"`
	Message string              `json:"message,omitempty"`
	Run     *reconcile.RunState `json:"run,omitempty"`
}

func handleReconcileStart(r Reconciler) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "this process runs no reconciler")
		}
		var req ReconcileRequest
		if c.Request().ContentLength != 0 {
			if err := decodeJSON(c, &req); err != nil {
				return err
			}
		}
		if !reconcile.ValidMode(req.Mode) {
			return echo.NewHTTPError(http.StatusBadRequest, "mode: want report, copy, sync or copy_all")
		}
		if !reconcile.ValidVerify(req.Verify) {
			return echo.NewHTTPError(http.StatusBadRequest, "verify: want size, etag or content")
		}
		if req.MaxDeletes < 0 {
			return echo.NewHTTPError(http.StatusBadRequest, "max_deletes: want 0 (the task's cap) or more")
		}
		if len(req.Prefixes) > 100_000 {
			return echo.NewHTTPError(http.StatusBadRequest, "prefixes: at most 100000")
		}
		for _, p := range req.Prefixes {
			if p == "" || len(p) > 1023 {
				return echo.NewHTTPError(http.StatusBadRequest, "prefixes: each must be 1 to 1023 bytes")
			}
		}
		st, err := r.Start(c.Request().Context(), c.Param("task"), reconcile.Options{Mode: req.Mode, Verify: req.Verify,
			MaxDeletes: req.MaxDeletes, Prefixes: req.Prefixes}, "api")
		var running *reconcile.RunningError
		switch {
		case errors.As(err, &running):
			return c.JSON(http.StatusConflict, ReconcileStarted{ID: running.ID, Message: "a reconcile run of this task is in progress"})
		case errors.Is(err, reconcile.ErrNoTask):
			return echo.NewHTTPError(http.StatusNotFound, "no task named "+c.Param("task"))
		case err != nil:
			return echo.NewHTTPError(http.StatusServiceUnavailable, "starting the run: "+err.Error())
		}
		return c.JSON(http.StatusAccepted, ReconcileStarted{ID: st.ID, Run: &st})
	}
}

func handleReconcileGet(r Reconciler) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "this process runs no reconciler")
		}
		st, err := r.Get(c.Request().Context(), c.Param("id"))
		if errors.Is(err, reconcile.ErrNoRun) {
			return echo.NewHTTPError(http.StatusNotFound, "no reconcile run "+c.Param("id"))
		}
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		return c.JSON(http.StatusOK, st)
	}
}

func handleReconcileReport(r Reconciler) echo.HandlerFunc {
	return func(c echo.Context) error {
		if r == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "this process runs no reconciler")
		}
		id := c.Param("id")
		if _, err := r.Get(c.Request().Context(), id); errors.Is(err, reconcile.ErrNoRun) {
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
