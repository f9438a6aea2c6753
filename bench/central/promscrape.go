package main

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// promHistogram reads one histogram from a /metrics page as cumulative
// (upper bound, count) pairs.
func promHistogram(api, token, name string) ([][2]float64, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+api+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token) // central's /metrics needs the admin (or scrape) token
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out [][2]float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"_bucket{le=\"") {
			continue
		}
		rest := strings.TrimPrefix(line, name+"_bucket{le=\"")
		le, count, ok := strings.Cut(rest, "\"} ")
		if !ok {
			continue
		}
		ub := math.Inf(1)
		if le != "+Inf" {
			ub, _ = strconv.ParseFloat(le, 64)
		}
		c, _ := strconv.ParseFloat(count, 64)
		out = append(out, [2]float64{ub, c})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s on %s/metrics", name, api)
	}
	return out, sc.Err()
}

// promQuantile is the upper bound of the bucket holding quantile q of the
// observations between two scrapes.
func promQuantile(before, after [][2]float64, q float64) float64 {
	if len(before) != len(after) {
		before = make([][2]float64, len(after))
	}
	total := after[len(after)-1][1] - before[len(before)-1][1]
	if total == 0 {
		return 0
	}
	for i := range after {
		if after[i][1]-before[i][1] >= q*total {
			return after[i][0]
		}
	}
	return math.Inf(1)
}

func secs(f float64) string {
	if math.IsInf(f, 1) {
		return "> max bucket"
	}
	return ms(time.Duration(f * float64(time.Second)))
}
