package gpio

import (
	"fmt"
	"sync"
	"time"

	"github.com/warthog618/go-gpiocdev"
)

// LineOptions configure a hardware line.
type LineOptions struct {
	// ActiveLow: the input is active when the pin is low, as with a
	// contact that pulls a pulled-up pin to ground.
	ActiveLow bool
	// Bias is "" (as is), "pull-up", "pull-down" or "disabled".
	Bias string
}

// chipLine is a Line on the Linux GPIO character device (/dev/gpiochipN).
type chipLine struct {
	line  *gpiocdev.Line
	edges chan Edge
	once  sync.Once
}

// OpenLine requests offset on chip ("gpiochip0" or "/dev/gpiochip0") as an
// input with events on both edges. The kernel's own debounce is not used:
// not every GPIO driver has it, and the adapter's is the same everywhere.
func OpenLine(chip string, offset int, o LineOptions) (Line, error) {
	cl := &chipLine{edges: make(chan Edge, 256)}
	opts := []gpiocdev.LineReqOption{
		gpiocdev.AsInput,
		gpiocdev.WithBothEdges,
		gpiocdev.WithConsumer("vigil"),
		gpiocdev.WithEventHandler(func(ev gpiocdev.LineEvent) {
			// Kernel timestamps are monotonic, not wall time: take ours.
			select {
			case cl.edges <- Edge{Active: ev.Type == gpiocdev.LineEventRisingEdge, Time: time.Now()}:
			default: // reader behind: it re-reads the level when the line settles
			}
		}),
	}
	if o.ActiveLow {
		opts = append(opts, gpiocdev.AsActiveLow)
	}
	switch o.Bias {
	case "":
	case "pull-up":
		opts = append(opts, gpiocdev.WithPullUp)
	case "pull-down":
		opts = append(opts, gpiocdev.WithPullDown)
	case "disabled":
		opts = append(opts, gpiocdev.WithBiasDisabled)
	default:
		return nil, fmt.Errorf("gpio: bias %q: want pull-up, pull-down or disabled", o.Bias)
	}
	l, err := gpiocdev.RequestLine(chip, offset, opts...)
	if err != nil {
		return nil, fmt.Errorf("gpio: %s line %d: %w", chip, offset, err)
	}
	cl.line = l
	return cl, nil
}

func (c *chipLine) Level() (bool, error) {
	v, err := c.line.Value()
	return v == 1, err
}

func (c *chipLine) Edges() <-chan Edge { return c.edges }

// Close releases the line; gpiocdev waits for a running event handler, so
// no edge is sent after the channel is closed.
func (c *chipLine) Close() error {
	var err error
	c.once.Do(func() {
		err = c.line.Close()
		close(c.edges)
	})
	return err
}
