-- wrk script: counts responses by status over all threads and prints them
-- as `wrk_status_<code> <n> responses` lines (bench/loadtest reads them).
-- With `-- N` after the URL, each request asks for one of N distinct
-- pictures of the default view's cost (zoom 1.000000 .. 1.(N-1)), each
-- thread from its own starting point.
local threads = {}

function setup(thread)
	table.insert(threads, thread)
	thread:set("tid", #threads)
end

function init(args)
	statuses = {}
	distinct = tonumber(args[1]) or 0
	seq = math.floor((tid - 1) * distinct / 8) -- threads start apart (up to 8)
end

function request()
	if distinct == 0 then
		return wrk.format(nil)
	end
	seq = seq + 1
	return wrk.format(nil, string.format("/mandelbrot?zoom=1.%06d", seq % distinct))
end

function response(status, headers, body)
	statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
	local total = {}
	for _, t in ipairs(threads) do
		for code, n in pairs(t:get("statuses")) do
			total[code] = (total[code] or 0) + n
		end
	end
	for code, n in pairs(total) do
		io.write(string.format("wrk_status_%d %d responses\n", code, n))
	end
	io.write(string.format("wrk_socket_errors %d errors\n", summary.errors.connect +
		summary.errors.read + summary.errors.write + summary.errors.timeout))
end
