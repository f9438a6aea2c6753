package edge

// SNTPResponder is sntpResponder for the external tests (selftest_test.go).
var SNTPResponder = sntpResponder
