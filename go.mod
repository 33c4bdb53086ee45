module github.com/wardenlab/warden

go 1.26.8
