// The Python extension moecast._core: thin calls into sim/ (the same functions the moecast command
// calls), with JSON results as text (json.loads in moecast/__init__.py gives the dict that
// `moecast <command> --json` prints) and sim::InputError raised as moecast.InputError, a
// ValueError carrying the source, line and key. No computation happens here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "sim/core/error.h"
#include "sim/core/finite.h"
#include "sim/cost/hardware.h"
#include "sim/model/config_toml.h"
#include "sim/report/fit_report.h"
#include "sim/report/optimize_report.h"
#include "sim/report/report.h"
#include "sim/report/sweep.h"
#include "sim/study/backtest.h"

namespace py = pybind11;

namespace moecast::python {
namespace {

using Options = std::vector<std::pair<std::string, std::string>>;

sim::CostRequest request_from(const Options& options) {
    sim::CostRequest r;
    for (const auto& [key, value] : options) sim::set_cost_option(r, key, value);
    return r;
}

// `moecast predict MODEL --set ... [--hardware ... options] --json`, as JSON text.
std::string predict_json(const std::string& model, const std::vector<std::string>& overrides, const Options& options) {
    py::gil_scoped_release unlocked;
    const sim::ModelPrediction p = sim::predict_model(sim::load_model(model, overrides));
    const sim::CostRequest r = request_from(options);
    if (r.hardware.empty()) {
        if (!options.empty()) {
            const std::string& key = options.front().first;
            throw sim::InputError(key, 0, "hardware", key + " needs hardware (a profile name or path)");
        }
        return sim::checked_finite(sim::to_json(p), "predict").dump();
    }
    return sim::checked_finite(sim::to_json(p, sim::predict_cost_request(p, r)), "predict").dump();
}

// The loaded model: name, source file, format and its config as JSON text (every key, defaults
// filled in, as `moecast import` would write it).
py::dict load_model(const std::string& model, const std::vector<std::string>& overrides) {
    sim::LoadedModel m;
    {
        py::gil_scoped_release unlocked;
        m = sim::load_model(model, overrides);
    }
    std::ostringstream config;
    config << toml::json_formatter(sim::model_to_toml(m.model));
    py::dict d;
    d["name"] = m.model.name;
    d["source"] = m.source;
    d["format"] = m.format;
    d["config_json"] = config.str();
    return d;
}

py::dict sweep(const std::string& model, const std::vector<std::string>& overrides, const Options& options,
               const std::vector<std::pair<std::string, std::vector<std::string>>>& axes, int threads,
               bool skip_invalid) {
    sim::SweepRequest req;
    req.model = model;
    req.overrides = overrides;
    req.cost = request_from(options);
    for (const auto& [key, values] : axes) req.axes.push_back({key, values});
    req.threads = threads;
    req.skip_invalid = skip_invalid;
    sim::SweepResult r;
    {
        py::gil_scoped_release unlocked;
        r = sim::run_sweep(req);
    }
    py::list index;
    for (const std::vector<int32_t>& ix : r.axis_index) index.append(py::cast(ix));
    py::list columns;
    for (const sim::SweepColumn& c : r.columns) {
        py::list values(c.values.size());
        for (size_t i = 0; i < c.values.size(); ++i) {
            const double v = c.values[i];
            switch (c.kind) {
            case sim::ColumnKind::count: values[i] = py::int_(static_cast<long long>(v)); break;
            case sim::ColumnKind::flag: values[i] = py::bool_(v != 0); break;
            case sim::ColumnKind::real: values[i] = py::float_(v); break;
            }
        }
        columns.append(py::make_tuple(c.name, values));
    }
    py::dict d;
    d["rows"] = r.rows;
    d["axis_index"] = index;
    d["columns"] = columns;
    d["skipped"] = r.skipped;
    d["first_skip_reason"] = r.first_skip_reason;
    return d;
}

// `moecast optimize --json` (and with plot the SVG of --plot).
py::tuple optimize(const sim::OptimizeRequest& r) {
    sim::OptimizeReport rep;
    {
        py::gil_scoped_release unlocked;
        rep = sim::optimize_report(r);
    }
    return py::make_tuple(sim::checked_finite(rep.json, "optimize").dump(), rep.svg);
}

// `moecast fit DATA --json` on a CSV file (csv_text empty) or on CSV text, and the TOML of -o.
py::tuple fit(const std::string& path, const std::string& csv_text, sim::FitRequest r) {
    std::string json, toml;
    {
        py::gil_scoped_release unlocked;
        const sim::FitData data =
            csv_text.empty() ? sim::load_fit_data(path) : sim::fit_data_from_csv_text(csv_text, path);
        if (r.law_name.empty()) r.law_name = sim::fitted_law_name(r.law, path);
        const sim::FitReport rep = sim::fit_report(data, r);
        json = sim::checked_finite(rep.json, "fit").dump();
        toml = sim::fitted_law_toml(rep, path);
    }
    return py::make_tuple(json, toml);
}

// `moecast backtest [FILES] [--fit] --json`.
std::string backtest(const std::vector<std::string>& files, bool fit) {
    py::gil_scoped_release unlocked;
    return sim::checked_finite(sim::backtest_output(files, fit).json, "backtest").dump();
}

}  // namespace
}  // namespace moecast::python

PYBIND11_MODULE(_core, m) {
    using namespace moecast;
    m.doc() = "moecast's simulator libraries (sim/); use the moecast package, not this module";

    static py::exception<sim::InputError> input_error(m, "InputError", PyExc_ValueError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const sim::InputError& e) {
            py::object err = py::handle(input_error.ptr())(e.what());  // an instance, to carry attributes
            err.attr("source") = e.source();
            err.attr("line") = e.line();
            err.attr("key") = e.key();
            PyErr_SetObject(input_error.ptr(), err.ptr());
        } catch (const sim::IoError& e) {
            PyErr_SetString(PyExc_OSError, e.what());
        }
    });

    m.def("predict_json", &python::predict_json, py::arg("model"), py::arg("overrides"), py::arg("options"));
    m.def("load_model", &python::load_model, py::arg("model"), py::arg("overrides"));
    m.def("sweep", &python::sweep, py::arg("model"), py::arg("overrides"), py::arg("options"), py::arg("axes"),
          py::arg("threads"), py::arg("skip_invalid"));
    m.def("cost_option_keys", &sim::cost_option_keys);

    // Requests with the command's defaults; moecast/__init__.py sets only what the caller gave.
    py::class_<sim::OptimizeRequest>(m, "OptimizeRequest")
        .def(py::init<>())
        .def_readwrite("law", &sim::OptimizeRequest::law)
        .def_readwrite("budget", &sim::OptimizeRequest::budget)
        .def_readwrite("budget_unit", &sim::OptimizeRequest::unit)
        .def_readwrite("hardware", &sim::OptimizeRequest::hardware)
        .def_readwrite("gpus", &sim::OptimizeRequest::gpus)
        .def_readwrite("family", &sim::OptimizeRequest::family)
        .def_readwrite("max_params", &sim::OptimizeRequest::max_params)
        .def_readwrite("max_inference_flops", &sim::OptimizeRequest::max_inference_flops)
        .def_readwrite("max_memory_gb", &sim::OptimizeRequest::max_memory_gb)
        .def_readwrite("plot", &sim::OptimizeRequest::plot);
    py::class_<sim::FitRequest>(m, "FitRequest")
        .def(py::init<>())
        .def_readwrite("law", &sim::FitRequest::law)
        .def_readwrite("bootstrap", &sim::FitRequest::bootstrap)
        .def_readwrite("holdout", &sim::FitRequest::holdout)
        .def_readwrite("drop_highest", &sim::FitRequest::drop_highest)
        .def_readwrite("threads", &sim::FitRequest::threads)
        .def_readwrite("huber_delta", &sim::FitRequest::huber_delta)
        .def_readwrite("seed", &sim::FitRequest::seed)
        .def_readwrite("isoflop", &sim::FitRequest::isoflop)
        .def_readwrite("law_name", &sim::FitRequest::law_name);
    m.def("optimize", &python::optimize, py::arg("request"));
    m.def("fit", &python::fit, py::arg("path"), py::arg("csv_text"), py::arg("request"));
    m.def("backtest", &python::backtest, py::arg("files"), py::arg("fit"));
    m.def("configs_dir", &sim::configs_dir);
    m.def("profiles_dir", &sim::profiles_dir);
}
