module modelplane.local/tools/bench/goproxy

go 1.26

require golang.org/x/net v0.47.0

require golang.org/x/text v0.31.0 // indirect
