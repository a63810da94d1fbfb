-- wrk script: counts responses by status over all threads and prints them
-- as `wrk_status_<code> <n> responses` lines (scripts/loadtest reads them).
local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	statuses = {}
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
