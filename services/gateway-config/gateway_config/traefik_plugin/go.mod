module modelplane.ai/apikeys

go 1.22
