package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// TaskLister tells the state of every task, for GET /v1/tasks.
type TaskLister interface {
	// Tasks returns one value a task (its JSON encoding is the answer's),
	// in the configuration's order.
	Tasks(ctx context.Context) ([]any, error)
}

// ConfigStatus is the configuration as this process runs it: when the one
// in use was loaded, and how the last reload (SIGHUP) went. GET /v1/tasks
// shows it as "config"; a status page reads it the same way.
type ConfigStatus struct {
	// LoadedAt is when the configuration in use was read: at start, or by
	// the last reload that succeeded.
	LoadedAt time.Time `json:"loaded_at"`
	// LastReload is the last reload asked for; nil when there was none
	// since the start.
	LastReload *ReloadStatus `json:"last_reload,omitempty"`
}

// ReloadStatus is the outcome of one configuration reload.
type ReloadStatus struct {
	At time.Time `json:"at"`
	OK bool      `json:"ok"`
	// Error is why the reload was refused (the configuration's report, as
	// at start, or the settings that need a restart); empty when OK. The
	// configuration in use is then still the one loaded at LoadedAt.
	Error string `json:"error,omitempty"`
}

// ConfigStatuser tells the configuration's status at the moment it is
// asked (a reload may change it between two requests).
type ConfigStatuser interface {
	ConfigStatus() ConfigStatus
}

// TaskList is the body of GET /v1/tasks.
type TaskList struct {
	Tasks []any `json:"tasks"`
	// Config is the configuration's status; absent where no
	// ConfigStatuser is wired.
	Config *ConfigStatus `json:"config,omitempty"`
}

// handleTasks answers GET /v1/tasks: {"tasks": [...], "config": {...}}.
func handleTasks(l TaskLister, status ConfigStatuser) echo.HandlerFunc {
	return func(c echo.Context) error {
		if l == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "the task list needs JetStream, which is not ready")
		}
		tasks, err := l.Tasks(c.Request().Context())
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		out := TaskList{Tasks: tasks}
		if status != nil {
			st := status.ConfigStatus()
			out.Config = &st
		}
		return c.JSON(http.StatusOK, out)
	}
}
