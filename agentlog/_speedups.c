/* The caller's hot path of agentlog.track() in C: the three calls every agent
 * call makes (construct, __enter__, __exit__).
 *
 * Why C: on the caller's thread a tracked call runs right after the agent
 * waited on its LLM, with cold caches, and there every Python frame and every
 * dict resize costs microseconds. The pure-Python twin (tracking._PyTracker)
 * does exactly the same and is used when this module is not built or when
 * AGENTLOG_NO_EXTENSIONS is set; the test suite runs both.
 *
 * Everything that is not the common path (unknown fields, a parent to link,
 * an exception to record, an error of agentlog's own) is handed to Python
 * functions registered by setup(). The clocks and runtime.submit are looked up
 * by name at every call, because freezegun and tests swap those module
 * attributes. Like the Python version, this never lets an Exception of its own
 * reach the caller.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject *record_type;    /* agentlog.execution.Execution */
    PyObject *current;        /* the ContextVar holding the execution being tracked */
    PyObject *clock_dict;     /* agentlog.clock.__dict__: wall_clock_ns, duration_clock */
    PyObject *runtime_dict;   /* agentlog.runtime.__dict__: submit */
    PyObject *trackable;      /* frozenset: the field names track() takes as keywords */
    PyObject *fold_unknown;   /* fields -> fields with the unknown ones in metadata */
    PyObject *link_to_parent; /* (execution, parent) */
    PyObject *record_error;   /* (execution, exception) */
    PyObject *own_error;      /* (stage, execution, error): counts and logs agentlog's error */
    PyObject *s_agent, *s_model, *s_metadata, *s_status, *s_running, *s_success;
    PyObject *s_started_ns, *s_finished, *s_wall_clock_ns, *s_duration_clock, *s_submit;
    PyObject *s_start, *s_record;
    PyObject *real_time_ns, *real_perf_counter; /* time.time_ns, time.perf_counter */
} State;

static State S;
static int ready = 0;

typedef struct {
    PyObject_HEAD
    PyObject *execution;
    PyObject *token;
    double start;
    int started; /* start holds a reading */
} Tracker;

/* A record's dict ends up with about a dozen keys; made that size at once, it is
 * never resized on the caller's thread (each resize is a cold allocation). */
#if PY_VERSION_HEX < 0x030D0000
#define NEW_RECORD_DICT() _PyDict_NewPresized(14)
#else
#define NEW_RECORD_DICT() PyDict_New()
#endif

#if defined(__linux__)
#include <time.h>
/* What time.time_ns and time.perf_counter read on Linux, without the calls. */
#define DIRECT_CLOCKS 1
static PyObject *
direct_clock(PyObject *clock)
{
    struct timespec now;
    if (clock == S.real_time_ns) {
        if (clock_gettime(CLOCK_REALTIME, &now) == 0) {
            return PyLong_FromLongLong((long long)now.tv_sec * 1000000000LL + now.tv_nsec);
        }
    }
    else if (clock == S.real_perf_counter) {
        if (clock_gettime(CLOCK_MONOTONIC, &now) == 0) {
            return PyFloat_FromDouble((double)now.tv_sec + (double)now.tv_nsec * 1e-9);
        }
    }
    return NULL;
}
#endif

/* clock.wall_clock_ns() or clock.duration_clock(): whatever the module holds now,
 * so that freezegun's fakes are honoured; the real functions are read directly. */
static PyObject *
read_clock(PyObject *name)
{
    PyObject *clock = PyDict_GetItemWithError(S.clock_dict, name); /* borrowed */
    if (clock == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_AttributeError, name);
        }
        return NULL;
    }
#ifdef DIRECT_CLOCKS
    PyObject *direct = direct_clock(clock);
    if (direct != NULL) {
        return direct;
    }
#endif
    Py_INCREF(clock);
    PyObject *value = PyObject_CallNoArgs(clock);
    Py_DECREF(clock);
    return value;
}

/* An error of agentlog's own: hand it to Python (counted, logged), never to the
 * caller. Returns -1 only for what must propagate (not an Exception: e.g.
 * KeyboardInterrupt), as the Python version's `except Exception` does. */
static int
report_own_error(PyObject *stage, PyObject *execution)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *result = PyObject_CallFunctionObjArgs(
        S.own_error, stage, execution ? execution : Py_None, value ? value : Py_None, NULL);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    if (result == NULL) {
        /* Even logging failed: say so on stderr (sys.unraisablehook), do not raise. */
        PyErr_WriteUnraisable(S.own_error);
        return 0;
    }
    Py_DECREF(result);
    return 0;
}

static int
fields_are_trackable(PyObject *fields)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(fields, &pos, &key, &value)) {
        int known = PySet_Contains(S.trackable, key);
        if (known <= 0) {
            return known; /* 0: unknown, -1: error */
        }
    }
    return 1;
}

static int
pop_keyword(PyObject *fields, PyObject *name, PyObject **value)
{
    /* *value: a new reference to fields[name], removed from fields; untouched if absent. */
    PyObject *found = PyDict_GetItemWithError(fields, name);
    if (found == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    Py_INCREF(found);
    Py_XSETREF(*value, found);
    return PyDict_DelItem(fields, name);
}

static PyObject *
Tracker_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *agent = NULL, *model = NULL, *fields = NULL, *values = NULL, *record = NULL;
    Tracker *self = NULL;
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "agentlog._speedups.setup() was not called");
        return NULL;
    }
    if (kwds != NULL && PyDict_GET_SIZE(kwds) > 0) {
        fields = PyDict_Copy(kwds); /* never keep or change a dict the caller passed */
        if (fields == NULL || pop_keyword(fields, S.s_model, &model) < 0 ||
            pop_keyword(fields, S.s_agent, &agent) < 0) {
            goto fail;
        }
    }
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "track() takes 1 positional argument but %zd were given",
                     nargs);
        goto fail;
    }
    if (nargs == 1) {
        if (agent != NULL) {
            PyErr_SetString(PyExc_TypeError, "track() got multiple values for argument 'agent'");
            goto fail;
        }
        agent = Py_NewRef(PyTuple_GET_ITEM(args, 0));
    }
    if (agent == NULL) {
        PyErr_SetString(PyExc_TypeError, "track() missing 1 required positional argument: 'agent'");
        goto fail;
    }
    if (fields != NULL && PyDict_GET_SIZE(fields) > 0) {
        int known = fields_are_trackable(fields);
        if (known < 0) {
            goto fail;
        }
        if (!known) {
            PyObject *folded = PyObject_CallOneArg(S.fold_unknown, fields);
            if (folded == NULL) {
                goto fail;
            }
            Py_SETREF(fields, folded);
        }
        PyObject *metadata = PyDict_GetItemWithError(fields, S.s_metadata); /* borrowed */
        if (metadata == NULL && PyErr_Occurred()) {
            goto fail;
        }
        if (metadata == Py_None) {
            PyObject *empty = PyDict_New();
            int stored = empty == NULL ? -1 : PyDict_SetItem(fields, S.s_metadata, empty);
            Py_XDECREF(empty);
            if (stored < 0) {
                goto fail;
            }
        }
    }
    values = NEW_RECORD_DICT();
    if (values == NULL || (fields != NULL && PyDict_Update(values, fields) < 0) ||
        PyDict_SetItem(values, S.s_agent, agent) < 0 ||
        PyDict_SetItem(values, S.s_model, model != NULL ? model : Py_None) < 0) {
        goto fail;
    }
    PyTypeObject *record_type = (PyTypeObject *)S.record_type;
    record = record_type->tp_alloc(record_type, 0); /* object.__new__(Execution) */
    if (record == NULL || PyObject_GenericSetDict(record, values, NULL) < 0) {
        goto fail;
    }
    self = (Tracker *)type->tp_alloc(type, 0);
    if (self == NULL) {
        goto fail;
    }
    self->execution = record;
    record = NULL;
    self->token = NULL;
    self->started = 0;
fail:
    Py_XDECREF(agent);
    Py_XDECREF(model);
    Py_XDECREF(fields);
    Py_XDECREF(values);
    Py_XDECREF(record);
    return (PyObject *)self;
}

static void
Tracker_dealloc(Tracker *self)
{
    Py_CLEAR(self->execution);
    Py_CLEAR(self->token);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Tracker_enter(Tracker *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *execution = self->execution;
    PyObject *parent = NULL, *started_ns = NULL, *values = NULL;
    if (PyContextVar_Get(S.current, Py_None, &parent) < 0) {
        goto error;
    }
    if (parent != Py_None) {
        PyObject *linked = PyObject_CallFunctionObjArgs(S.link_to_parent, execution, parent, NULL);
        if (linked == NULL) {
            goto error;
        }
        Py_DECREF(linked);
    }
    Py_CLEAR(parent);
    started_ns = read_clock(S.s_wall_clock_ns);
    if (started_ns == NULL) {
        goto error;
    }
    values = PyObject_GenericGetDict(execution, NULL);
    if (values == NULL || PyDict_SetItem(values, S.s_started_ns, started_ns) < 0) {
        goto error;
    }
    Py_CLEAR(values);
    Py_CLEAR(started_ns);
    PyObject *token = PyContextVar_Set(S.current, execution);
    if (token == NULL) {
        goto error;
    }
    Py_XSETREF(self->token, token);
    goto start;

error:
    Py_XDECREF(parent);
    Py_XDECREF(started_ns);
    Py_XDECREF(values);
    if (report_own_error(S.s_start, execution) < 0) {
        return NULL;
    }
start:;
    PyObject *now = read_clock(S.s_duration_clock);
    if (now != NULL) {
        self->start = PyFloat_AsDouble(now);
        Py_DECREF(now);
        self->started = !(self->start == -1.0 && PyErr_Occurred());
    }
    if (PyErr_Occurred()) {
        self->started = 0;
        if (report_own_error(S.s_start, execution) < 0) {
            return NULL;
        }
    }
    Py_INCREF(execution);
    return execution;
}

static PyObject *
Tracker_exit(Tracker *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *execution = self->execution;
    PyObject *exc = nargs >= 2 ? args[1] : Py_None;
    PyObject *now = NULL, *wall = NULL, *finished = NULL, *values = NULL, *status = NULL;
    PyObject *submit = NULL, *result = NULL;
    int propagate = 0;

    now = read_clock(S.s_duration_clock);
    if (now == NULL) {
        goto error;
    }
    double seconds = PyFloat_AsDouble(now);
    if (seconds == -1.0 && PyErr_Occurred()) {
        goto error;
    }
    if (!self->started) {
        PyErr_SetString(PyExc_RuntimeError, "track() exited without a start time");
        goto error;
    }
    Py_SETREF(now, PyFloat_FromDouble(seconds - self->start));
    if (now == NULL) {
        goto error;
    }
    wall = read_clock(S.s_wall_clock_ns);
    if (wall == NULL) {
        goto error;
    }
    /* Read as completed_at and duration_ms (made when first read). */
    finished = PyTuple_Pack(2, now, wall);
    values = finished ? PyObject_GenericGetDict(execution, NULL) : NULL;
    if (values == NULL || PyDict_SetItem(values, S.s_finished, finished) < 0) {
        goto error;
    }
    if (self->token != NULL) {
        PyObject *token = self->token;
        self->token = NULL;
        int reset = PyContextVar_Reset(S.current, token);
        Py_DECREF(token);
        if (reset < 0) {
            /* Exited in another context than it was entered (e.g. a generator
             * resumed elsewhere): the other context keeps its own value. */
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
                goto error;
            }
            PyErr_Clear();
        }
    }
    if (exc != Py_None) {
        result = PyObject_CallFunctionObjArgs(S.record_error, execution, exc, NULL);
        if (result == NULL) {
            goto error;
        }
        Py_CLEAR(result);
    }
    else {
        /* Unset, status reads as the dataclass default, "running". */
        status = PyDict_GetItemWithError(values, S.s_status);
        if (status == NULL && PyErr_Occurred()) {
            goto error;
        }
        Py_XINCREF(status);
        int running = status == NULL ? 1 : PyObject_RichCompareBool(status, S.s_running, Py_EQ);
        if (running < 0 || (running && PyDict_SetItem(values, S.s_status, S.s_success) < 0)) {
            goto error;
        }
    }
    submit = PyDict_GetItemWithError(S.runtime_dict, S.s_submit); /* borrowed */
    if (submit == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetObject(PyExc_AttributeError, S.s_submit);
        }
        goto error;
    }
    Py_INCREF(submit);
    result = PyObject_CallOneArg(submit, execution);
    Py_DECREF(submit);
    if (result == NULL) {
        goto error;
    }
    goto done;

error:
    propagate = report_own_error(S.s_record, execution) < 0;
done:
    Py_XDECREF(now);
    Py_XDECREF(wall);
    Py_XDECREF(finished);
    Py_XDECREF(values);
    Py_XDECREF(status);
    Py_XDECREF(result);
    if (propagate) {
        return NULL;
    }
    Py_RETURN_NONE; /* falsy: the caller's exception, if any, propagates untouched */
}

static PyMethodDef Tracker_methods[] = {
    {"__enter__", (PyCFunction)Tracker_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))Tracker_exit, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Tracker_members[] = {
    {"_execution", T_OBJECT, offsetof(Tracker, execution), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject TrackerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "agentlog._speedups.Tracker",
    .tp_doc = "The C hot path of agentlog.track (subclassed there).",
    .tp_basicsize = sizeof(Tracker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = Tracker_new,
    .tp_dealloc = (destructor)Tracker_dealloc,
    .tp_methods = Tracker_methods,
    .tp_members = Tracker_members,
};


/* Keyword names from code are interned (one identity check); others are compared. */
static int
is_name(PyObject *name, PyObject *interned, const char *text)
{
    return name == interned || PyUnicode_CompareWithASCIIString(name, text) == 0;
}

/* track(agent, *, model=None, **fields) through vectorcall: the record's dict is
 * built straight from the keywords (no kwargs dict, no copy). Anything but the
 * common case takes Tracker_new's path, which builds the same record. */
static PyObject *
Tracker_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *values = NULL, *record = NULL, *model = Py_None;
    Tracker *self = NULL;
    if (!ready || nargs != 1) {
        goto slow;
    }
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (is_name(name, S.s_model, "model")) {
            model = args[nargs + i];
            continue;
        }
        int known = PySet_Contains(S.trackable, name);
        if (known < 0) {
            return NULL;
        }
        /* unknown fields, or metadata=None: the general path */
        if (!known || (args[nargs + i] == Py_None && is_name(name, S.s_metadata, "metadata"))) {
            goto slow;
        }
    }
    values = NEW_RECORD_DICT();
    if (values == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nkw; i++) {
        if (PyDict_SetItem(values, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
            goto fail;
        }
    }
    if (PyDict_SetItem(values, S.s_agent, args[0]) < 0 ||
        PyDict_SetItem(values, S.s_model, model) < 0) {
        goto fail;
    }
    PyTypeObject *record_type = (PyTypeObject *)S.record_type;
    record = record_type->tp_alloc(record_type, 0); /* object.__new__(Execution) */
    if (record == NULL || PyObject_GenericSetDict(record, values, NULL) < 0) {
        goto fail;
    }
    self = (Tracker *)((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, 0);
    if (self != NULL) {
        self->execution = record;
        record = NULL;
    }
fail:
    Py_XDECREF(values);
    Py_XDECREF(record);
    return (PyObject *)self;

slow:;
    PyObject *tuple = PyTuple_New(nargs), *kwds = NULL, *result = NULL;
    if (tuple == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    }
    if (nkw > 0) {
        kwds = PyDict_New();
        for (Py_ssize_t i = 0; kwds != NULL && i < nkw; i++) {
            if (PyDict_SetItem(kwds, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                Py_CLEAR(kwds);
            }
        }
        if (kwds == NULL) {
            goto slow_done;
        }
    }
    result = Tracker_new((PyTypeObject *)type, tuple, kwds);
slow_done:
    Py_DECREF(tuple);
    Py_XDECREF(kwds);
    return result;
}

static PyObject *
install(PyObject *module, PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &TrackerType)) {
        PyErr_SetString(PyExc_TypeError, "install() takes a subclass of Tracker");
        return NULL;
    }
    /* Only this class: a type's vectorcall is never inherited, so subclasses of it
     * are built through tp_new (the same record, a little slower). */
    ((PyTypeObject *)cls)->tp_vectorcall = Tracker_vectorcall;
    Py_RETURN_NONE;
}

static PyObject *
intern(const char *text)
{
    return PyUnicode_InternFromString(text);
}

static PyObject *
setup(PyObject *module, PyObject *args)
{
    PyObject *record_type, *current, *clock_dict, *runtime_dict, *trackable;
    PyObject *fold_unknown, *link_to_parent, *record_error, *own_error;
    PyObject *real_time_ns, *real_perf_counter;
    if (!PyArg_ParseTuple(args, "O!OO!O!O!OOOOOO:setup", &PyType_Type, &record_type, &current,
                          &PyDict_Type, &clock_dict, &PyDict_Type, &runtime_dict,
                          &PyFrozenSet_Type, &trackable, &fold_unknown, &link_to_parent,
                          &record_error, &own_error, &real_time_ns, &real_perf_counter)) {
        return NULL;
    }
    if (!PyContextVar_CheckExact(current)) {
        PyErr_SetString(PyExc_TypeError, "setup: current must be a ContextVar");
        return NULL;
    }
    PyObject *objects[] = {record_type,  current,      clock_dict,        runtime_dict,
                           trackable,    fold_unknown, link_to_parent,    record_error,
                           own_error,    real_time_ns, real_perf_counter};
    PyObject **slots[] = {&S.record_type,  &S.current,      &S.clock_dict,       &S.runtime_dict,
                          &S.trackable,    &S.fold_unknown, &S.link_to_parent,   &S.record_error,
                          &S.own_error,    &S.real_time_ns, &S.real_perf_counter};
    for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
        Py_INCREF(objects[i]);
        Py_XSETREF(*slots[i], objects[i]);
    }
    ready = 1;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS,
     "setup(Execution, current, clock.__dict__, runtime.__dict__, trackable, fold_unknown, "
     "link_to_parent, record_error, own_error, time.time_ns, time.perf_counter): the Python "
     "objects the hot path uses."},
    {"install", install, METH_O,
     "install(cls): calls of cls (a subclass of Tracker) skip building a keyword dict."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "agentlog._speedups", "The C hot path of agentlog.track.", -1,
    module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&S.s_agent, "agent"},
        {&S.s_model, "model"},
        {&S.s_metadata, "metadata"},
        {&S.s_status, "status"},
        {&S.s_running, "running"},
        {&S.s_success, "success"},
        {&S.s_started_ns, "_started_ns"},
        {&S.s_finished, "_finished"},
        {&S.s_wall_clock_ns, "wall_clock_ns"},
        {&S.s_duration_clock, "duration_clock"},
        {&S.s_submit, "submit"},
        {&S.s_start, "start"},
        {&S.s_record, "record"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*names[i].slot == NULL && (*names[i].slot = intern(names[i].text)) == NULL) {
            return NULL;
        }
    }
    if (PyType_Ready(&TrackerType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&TrackerType);
    if (PyModule_AddObject(module, "Tracker", (PyObject *)&TrackerType) < 0) {
        Py_DECREF(&TrackerType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
