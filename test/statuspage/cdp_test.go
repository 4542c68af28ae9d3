package statuspage_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// browser is headless Chromium driven through the DevTools protocol over
// --remote-debugging-pipe (fd 3 in, fd 4 out, messages ended by NUL): no WebSocket library,
// no port. The test measures the layout the browser computed (Runtime.evaluate in the
// inspector's context); the page itself carries no JavaScript and needs none.
type browser struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   *os.File // our end of the browser's fd 3
	out  *bufio.Reader
	mu   sync.Mutex
	next int
	log  *strings.Builder
}

func lookChromium(t *testing.T) string {
	t.Helper()
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (Debian package chromium; `make test-deps` installs it as root)")
	return ""
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	bin := lookChromium(t)
	dir := t.TempDir()
	// fd 3: the browser reads commands; fd 4: it writes replies and events.
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	evR, evW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	log := &strings.Builder{}
	cmd := exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--disable-extensions",
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{cmdR, evW}
	cmd.Stdout, cmd.Stderr = &syncWriter{b: log}, &syncWriter{b: log}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	_ = cmdR.Close()
	_ = evW.Close()
	b := &browser{t: t, cmd: cmd, in: cmdW, out: bufio.NewReaderSize(evR, 1<<20), log: log}
	t.Cleanup(func() {
		_ = b.in.Close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = evR.Close()
	})
	return b
}

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() < 64<<10 {
		w.b.Write(p)
	}
	return len(p), nil
}

type cdpMessage struct {
	ID     int             `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
	SessionID string `json:"sessionId"`
}

// call sends one command and waits for its reply (events in between are skipped), within a
// deadline enforced by killing the browser.
func (b *browser) call(session, method string, params any, result any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := b.next
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if _, err := b.in.Write(append(raw, 0)); err != nil {
		return fmt.Errorf("cdp %s: write: %w (chromium said: %s)", method, err, b.log)
	}
	timer := time.AfterFunc(60*time.Second, func() { _ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL) })
	defer timer.Stop()
	for {
		line, err := b.out.ReadBytes(0)
		if err != nil {
			return fmt.Errorf("cdp %s: read: %w (chromium said: %s)", method, err, b.log)
		}
		var m cdpMessage
		if err := json.Unmarshal(line[:len(line)-1], &m); err != nil {
			return fmt.Errorf("cdp %s: decode %q: %w", method, line, err)
		}
		if m.ID != id {
			continue
		}
		if m.Error != nil {
			return fmt.Errorf("cdp %s: %s", method, m.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	}
}

// shot is one rendering of a page at one width.
type shot struct {
	PNG []byte
	// ScrollWidth and ClientWidth of the document: a page wider than its viewport scrolls
	// sideways as a whole.
	ScrollWidth, ClientWidth int
	// Wrapped lists the text of every .ts (timestamp) element laid out on more than one line.
	Wrapped []string
	// Overflowing lists elements whose right edge passes the viewport (outside any element
	// that scrolls on its own), as tag.class "text".
	Overflowing []string
}

// render opens url in a fresh tab at width x height CSS pixels (device scale 1; mobile
// emulation when mobile), waits for the load, measures the layout and takes a full-page
// screenshot.
func (b *browser) render(ctx context.Context, url string, width, height int, mobile bool) (shot, error) {
	var tgt struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &tgt); err != nil {
		return shot{}, err
	}
	defer func() { _ = b.call("", "Target.closeTarget", map[string]any{"targetId": tgt.TargetID}, nil) }()
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call("", "Target.attachToTarget", map[string]any{"targetId": tgt.TargetID, "flatten": true}, &att); err != nil {
		return shot{}, err
	}
	s := att.SessionID
	if err := b.call(s, "Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
	}, nil); err != nil {
		return shot{}, err
	}
	if err := b.call(s, "Page.navigate", map[string]any{"url": url}, nil); err != nil {
		return shot{}, err
	}
	for {
		var st struct {
			Result struct {
				Value string `json:"value"`
			} `json:"result"`
		}
		if err := b.call(s, "Runtime.evaluate", map[string]any{"expression": "document.readyState", "returnByValue": true}, &st); err != nil {
			return shot{}, err
		}
		if st.Result.Value == "complete" {
			break
		}
		select {
		case <-ctx.Done():
			return shot{}, fmt.Errorf("page %s not loaded: %w", url, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	var out shot
	var m struct {
		Result struct {
			Value struct {
				ScrollWidth int      `json:"scrollWidth"`
				ClientWidth int      `json:"clientWidth"`
				Wrapped     []string `json:"wrapped"`
				Overflowing []string `json:"overflowing"`
			} `json:"value"`
		} `json:"result"`
	}
	if err := b.call(s, "Runtime.evaluate", map[string]any{"expression": measure, "returnByValue": true}, &m); err != nil {
		return shot{}, err
	}
	v := m.Result.Value
	out.ScrollWidth, out.ClientWidth, out.Wrapped, out.Overflowing = v.ScrollWidth, v.ClientWidth, v.Wrapped, v.Overflowing
	var img struct {
		Data string `json:"data"`
	}
	if err := b.call(s, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &img); err != nil {
		return shot{}, err
	}
	png, err := base64.StdEncoding.DecodeString(img.Data)
	if err != nil {
		return shot{}, fmt.Errorf("decode screenshot: %w", err)
	}
	out.PNG = png
	return out, nil
}

// measure runs in the inspector's context against the rendered page (the page has no script).
const measure = `(() => {
  const de = document.documentElement;
  const vw = de.clientWidth;
  const wrapped = [];
  for (const e of document.querySelectorAll('.ts')) {
    const r = document.createRange();
    r.selectNodeContents(e);
    const lines = new Set();
    for (const b of r.getClientRects()) lines.add(Math.round(b.top));
    if (lines.size > 1) wrapped.push(e.textContent);
  }
  const scrolls = (e) => {
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
    }
    return false;
  };
  const overflowing = [];
  for (const e of document.body.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > vw + 0.5 && !scrolls(e)) {
      const cls = e.getAttribute('class') ? '.' + e.getAttribute('class') : '';
      overflowing.push(e.tagName.toLowerCase() + cls + ' "' + (e.textContent || '').trim().slice(0, 40) + '"');
    }
  }
  return {scrollWidth: de.scrollWidth, clientWidth: vw, wrapped, overflowing};
})()`
