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
#include "sim/cost/hardware.h"
#include "sim/model/config_toml.h"
#include "sim/report/report.h"
#include "sim/report/sweep.h"

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
        return sim::to_json(p).dump();
    }
    return sim::to_json(p, sim::predict_cost_request(p, r)).dump();
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
    m.def("configs_dir", &sim::configs_dir);
    m.def("profiles_dir", &sim::profiles_dir);
}
