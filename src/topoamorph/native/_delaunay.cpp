// Delaunay tetrahedra of a 3-D point set with CGAL's exact predicates (symbolic perturbation on degenerate
// input), as a tiny CPython extension with no NumPy build dependency.
//
//   topoamorph.native._delaunay.tetrahedra(points) -> bytes
//
// ``points``: any C-contiguous buffer of float64 holding n x 3 coordinates. Returns the finite cells as
// int32 vertex indices (m x 4, native byte order), or raises ValueError when the points do not span 3-D.
// Used by topoamorph.alpha_fast in place of Qhull (the NumPy alpha values and certificates are unchanged).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <CGAL/Delaunay_triangulation_3.h>
#include <CGAL/Exact_predicates_inexact_constructions_kernel.h>
#include <CGAL/Triangulation_vertex_base_with_info_3.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

typedef CGAL::Exact_predicates_inexact_constructions_kernel K;
typedef CGAL::Triangulation_vertex_base_with_info_3<std::int32_t, K> Vb;
typedef CGAL::Delaunay_triangulation_cell_base_3<K> Cb;
typedef CGAL::Triangulation_data_structure_3<Vb, Cb> Tds;
typedef CGAL::Delaunay_triangulation_3<K, Tds> Delaunay;

static PyObject* tetrahedra(PyObject*, PyObject* arg) {
  Py_buffer view;
  if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) return nullptr;
  const bool is_double = view.itemsize == 8 && view.format != nullptr &&
                         (view.format[0] == 'd' || (view.format[1] == 'd' && view.format[2] == '\0'));
  const Py_ssize_t count = view.len / 8;
  if (!is_double || count % 3 != 0 || count / 3 > INT32_MAX) {
    PyBuffer_Release(&view);
    PyErr_SetString(PyExc_TypeError, "tetrahedra() needs a C-contiguous float64 buffer of n x 3 coordinates");
    return nullptr;
  }
  const double* xyz = static_cast<const double*>(view.buf);
  const std::int32_t n = static_cast<std::int32_t>(count / 3);
  std::vector<std::int32_t> cells;
  int dimension = -1;
  std::string error;
  Py_BEGIN_ALLOW_THREADS  // no Python object is touched until Py_END_ALLOW_THREADS; exceptions stay inside
  try {
    std::vector<std::pair<K::Point_3, std::int32_t>> points;
    points.reserve(n);
    for (std::int32_t i = 0; i < n; ++i)
      points.emplace_back(K::Point_3(xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]), i);
    Delaunay dt(points.begin(), points.end());  // spatially sorted insertion
    dimension = dt.dimension();
    if (dimension == 3) {
      cells.reserve(4 * dt.number_of_finite_cells());
      for (auto c = dt.finite_cells_begin(); c != dt.finite_cells_end(); ++c)
        for (int j = 0; j < 4; ++j) cells.push_back(c->vertex(j)->info());
    }
  } catch (const std::exception& e) {
    error = e.what();
    if (error.empty()) error = "unknown error";
  } catch (...) {
    error = "unknown error";
  }
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&view);
  if (!error.empty()) {
    PyErr_Format(PyExc_RuntimeError, "CGAL Delaunay failed: %s", error.c_str());
    return nullptr;
  }
  if (dimension != 3) {
    PyErr_Format(PyExc_ValueError, "the %d points span only %d dimension(s), not 3", n, dimension);
    return nullptr;
  }
  return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(cells.data()),
                                   static_cast<Py_ssize_t>(cells.size() * sizeof(std::int32_t)));
}

static PyMethodDef methods[] = {
    {"tetrahedra", tetrahedra, METH_O,
     "tetrahedra(points) -> bytes: finite Delaunay cells (int32, m x 4) of n x 3 float64 points (CGAL)."},
    {nullptr, nullptr, 0, nullptr}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_delaunay",
                                    "CGAL's 3-D Delaunay triangulation for topoamorph.alpha_fast", -1, methods};

PyMODINIT_FUNC PyInit__delaunay(void) { return PyModule_Create(&module); }
