package handlers

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
)

// TaskLister tells the state of every task, for GET /v1/tasks.
type TaskLister interface {
	// Tasks returns one value a task (its JSON encoding is the answer's),
	// in the configuration's order.
	Tasks(ctx context.Context) ([]any, error)
}

// handleTasks answers GET /v1/tasks: {"tasks": [...]}.
func handleTasks(l TaskLister) echo.HandlerFunc {
	return func(c echo.Context) error {
		if l == nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "the task list needs JetStream, which is not ready")
		}
		tasks, err := l.Tasks(c.Request().Context())
		if err != nil {
			return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
		}
		return c.JSON(http.StatusOK, map[string]any{"tasks": tasks})
	}
}
