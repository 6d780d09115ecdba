/* tests/data/test_csv.c - the CSV dataset type: column selection, header, delimiter, scaling,
 * and the edge cases with their exact messages (ragged rows, non-numeric cells, missing label
 * column, empty file, huge values, CRLF, quoting). */
#include "helpers.h"

TestSuite(csv, .init = emd_setup, .fini = emd_teardown);

/* CSV(path="<dir>/<name>"<extra>) for a file written from `text`. */
static const char *spec_for(const char *name, const char *text, const char *extra)
{
    const char *path = emd_write(name, text);
    return emd_fmt("CSV(path=\"%s\"%s)", path, extra);
}

/* Sample i's features and label. */
static void assert_sample(em_dataset *d, int64_t i, const double *want, int nf, double label)
{
    em_tensor *x, *y;
    cr_assert_eq(em_dataset_get(d, i, &x, &y), EM_OK, "%s", em_last_error());
    EMT_ASSERT_SHAPE(x, EM_SHAPE(nf));
    EMT_ASSERT_VALUES(x, 0, want, nf);
    cr_assert_eq(em_item(y), label, "label of sample %lld is %g, expected %g", (long long)i,
                 em_item(y), label);
    em_release(x);
    em_release(y);
}

/* The expected message: the file's path followed by `rest`. */
#define AT(rest) emd_fmt("%s%s", emd_path("data.csv"), rest)

Test(csv, features_default_to_every_column_but_the_label)
{
    em_dataset *d = emd_new(spec_for("data.csv", "a,label,b\n1,0,2\n3,1,4\n", ""));
    cr_assert_eq(em_dataset_len(d), 2);
    assert_sample(d, 0, EMT_VALS(1, 2), 2, 0);
    assert_sample(d, 1, EMT_VALS(3, 4), 2, 1);
    em_dataset_free(d);
}

Test(csv, columns_are_picked_by_name_range_and_index)
{
    const char *text = "id,p0,p1,p2,p3,label\nx,1,2,3,4,5\ny,5,6,7,8,9\n";
    em_dataset *d = emd_new(spec_for("data.csv", text, ", features=[\"p1:p3\", \"p0\"]"));
    assert_sample(d, 1, EMT_VALS(6, 7, 8, 5), 4, 9);
    em_dataset_free(d);
    /* indices as text, negative from the end; open-ended ranges; the text column is skipped */
    d = emd_new(spec_for("data.csv", text, ", features=[\"1:2\", \"-2\"], label=\"5\""));
    assert_sample(d, 0, EMT_VALS(1, 2, 4), 3, 5);
    em_dataset_free(d);
    d = emd_new(spec_for("data.csv", text, ", features=\"p2:\", label=\"p0\""));
    assert_sample(d, 0, EMT_VALS(3, 4, 5), 3, 1);
    em_dataset_free(d);
}

Test(csv, a_file_without_header_numbers_its_columns)
{
    em_dataset *d = emd_new(spec_for("data.csv", "1;2;3;0\n4;5;6;1\n",
                                     ", header=false, delimiter=\";\", features=[\"0:2\"], "
                                     "label=\"-1\""));
    assert_sample(d, 1, EMT_VALS(4, 5, 6), 3, 1);
    em_dataset_free(d);
    /* without a line break at the end either */
    d = emd_new(spec_for("data.csv", "1\n2", ", header=false, label=None"));
    cr_assert_eq(em_dataset_len(d), 2);
    em_dataset_free(d);
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "1;2\n", ", header=false, delimiter=\";\""),
                          AT(": no column named 'label' (the file has no header row: columns are "
                             "numbered 0 to 1, e.g. label=\"1\")"));
}

Test(csv, tabs_separate_cells_with_delimiter_tab)
{
    em_dataset *d = emd_new(spec_for("data.tsv", "a\tb\tlabel\n1.5\t-2\t1\n", ", delimiter=\"\\t\""));
    assert_sample(d, 0, EMT_VALS(1.5, -2), 2, 1);
    em_dataset_free(d);
}

Test(csv, scale_multiplies_every_feature)
{
    em_dataset *d = emd_new(spec_for("data.csv", "a,b,label\n16,8,3\n", ", scale=0.0625"));
    assert_sample(d, 0, EMT_VALS(1, 0.5), 2, 3);
    em_dataset_free(d);
}

Test(csv, crlf_line_endings_read_like_lf)
{
    em_dataset *d = emd_new(spec_for("data.csv", "a,b,label\r\n1,2,0\r\n3,4,1\r\n", ""));
    cr_assert_eq(em_dataset_len(d), 2);
    assert_sample(d, 1, EMT_VALS(3, 4), 2, 1);
    em_dataset_free(d);
    /* and the header's last name has no '\r' either */
    d = emd_new(spec_for("data.csv", "a,b,label\r\n1,2,0\r\n", ", label=\"label\""));
    em_dataset_free(d);
}

Test(csv, quoted_cells_may_hold_delimiters_quotes_and_line_breaks)
{
    const char *text = "\"a, first\",\"say \"\"b\"\"\",label\n"
                       "\"1\", 2 ,\"0\"\n"
                       "\"3\",4,1\n";
    em_dataset *d = emd_new(spec_for("data.csv", text,
                                     ", features=[\"a, first\", \"say \\\"b\\\"\"]"));
    assert_sample(d, 0, EMT_VALS(1, 2), 2, 0);
    assert_sample(d, 1, EMT_VALS(3, 4), 2, 1);
    em_dataset_free(d);
    /* a quoted cell spanning two lines: later line numbers still count physical lines */
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "name,a,label\n\"two\nlines\",1,0\nx,abc,1\n",
                                   ", features=[\"a\"]"),
                          AT(":4:3: expected a number, got 'abc' in column 'a'"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,label\n\"1,0\n", ""),
                          AT(":2:1: unterminated quoted cell"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,label\n\"1\"x,0\n", ""),
                          AT(":2:4: unexpected 'x' after a quoted cell"));
}

Test(csv, a_byte_order_mark_and_blank_lines_are_skipped)
{
    em_dataset *d = emd_new(spec_for("data.csv", "\xEF\xBB\xBF" "a,label\n\n1,0\n   \n2,1\n\n", ""));
    cr_assert_eq(em_dataset_len(d), 2);
    assert_sample(d, 1, EMT_VALS(2), 1, 1);
    em_dataset_free(d);
}

Test(csv, a_ragged_row_names_its_line_and_column_counts)
{
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,c,label\n1,2,3,0\n\n4,5,6,1\n7,8,9\n", ""),
                          AT(":5: 3 columns, expected 4 (as in the header)"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,label\n1,2,0\n", ""),
                          AT(":2: 3 columns, expected 2 (as in the header)"));
}

Test(csv, a_non_numeric_cell_names_file_line_and_column)
{
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,label\n1,2,0\n3,abc,1\n", ""),
                          AT(":3:3: expected a number, got 'abc' in column 'b'"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,label\n1,0x1A,0\n", ""),
                          AT(":2:3: expected a number, got '0x1A' in column 'b'"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,label\n1,,0\n", ""),
                          AT(":2:3: expected a number, got an empty cell in column 'b' (missing "
                             "values are not supported)"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,label\n1,2,cat\n", ""),
                          AT(":2:5: expected a number, got 'cat' in column 'label'"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,label\n1,2.5.1,0\n", ""),
                          AT(":2:3: expected a number, got '2.5.1' in column 'b'"));
}

Test(csv, a_missing_label_column_lists_the_columns)
{
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,c\n1,2,3\n", ""),
                          AT(": no column named 'label' (columns: a, b, c)"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,c\n1,2,3\n", ", label=\"c\", features=[\"d\"]"),
                          AT(": no column named 'd' (columns: a, b, c)"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,c\n1,2,3\n", ", label=\"7\""),
                          AT(": column index 7 out of range (3 columns)"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,c\n1,2,3\n", ", label=\"a\", features=\"c:b\""),
                          AT(": features: range 'c:b' runs backwards (column 2 to column 1)"));
}

Test(csv, an_empty_file_or_a_header_alone_is_an_error)
{
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "", ""), AT(": empty file"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "\n\r\n  \n", ""), AT(": empty file"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,label\n", ""),
                          AT(": no data rows (only a header)"));
}

Test(csv, huge_values_that_overflow_are_errors_naming_the_cell)
{
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,label\n1,1e39,0\n", ""),
                          AT(":2:3: value '1e39' is out of range for float32 in column 'b'"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,label\n1,-1e999,0\n", ""),
                          AT(":2:3: '-1e999' is out of range in column 'b'"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,label\n1,inf,0\n", ""),
                          AT(":2:3: 'inf' is not a finite number in column 'b'"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,label\n1,NaN,0\n", ""),
                          AT(":2:3: 'NaN' is not a finite number in column 'b'"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,b,label\n1,1e30,0\n", ", scale=1e10"),
                          AT(":2:3: scaled value '1e30' is out of range for float32 in column "
                             "'b'"));
    /* large but representable values and tiny ones are fine */
    em_dataset *d = emd_new(spec_for("data.csv", "a,b,label\n3e38,1e-50,0\n", ""));
    assert_sample(d, 0, EMT_VALS((double)3e38f, 0), 2, 0);
    em_dataset_free(d);
}

Test(csv, labels_must_be_class_indices_unless_float32)
{
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,label\n1,2.5\n", ""),
                          AT(":2:3: label 2.5 is not an integer in column 'label' (for regression "
                             "targets use label_dtype=\"float32\")"));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,label\n1,-1\n", ""),
                          AT(":2:3: class label -1 is negative in column 'label'"));
    em_dataset *d = emd_new(spec_for("data.csv", "a,label\n1,2.5\n2,-1\n",
                                     ", label_dtype=\"float32\""));
    em_sample_info info;
    cr_assert_eq(em_dataset_sample_info(d, &info), EM_OK);
    cr_assert_eq(info.y_dtype, EM_F32);
    cr_assert_eq(info.num_classes, 0);
    assert_sample(d, 0, EMT_VALS(1), 1, 2.5);
    em_dataset_free(d);
    /* "3.0" is the class 3 */
    d = emd_new(spec_for("data.csv", "a,label\n1,3.0\n", ""));
    assert_sample(d, 0, EMT_VALS(1), 1, 3);
    em_dataset_free(d);
}

Test(csv, label_none_gives_an_unlabeled_dataset)
{
    em_dataset *d = emd_new(spec_for("data.csv", "a,b\n1,2\n", ", label=None"));
    em_tensor *x, *y;
    cr_assert_eq(em_dataset_get(d, 0, &x, &y), EM_OK);
    cr_assert_null(y);
    EMT_ASSERT_LIST(x, 0, 1, 2);
    em_release(x);
    em_dataset_free(d);
}

Test(csv, bad_arguments_and_missing_files_are_reported)
{
    EMD_ASSERT_SPEC_FAILS(emd_fmt("CSV(path=\"%s\")", emd_path("nope.csv")),
                          emd_fmt("CSV: cannot open '%s': No such file or directory",
                                  emd_path("nope.csv")));
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,label\n1,0\n", ", delimiter=\";;\""),
                          "CSV: delimiter must be one character other than a quote or a line "
                          "break, got \";;\"");
    EMD_ASSERT_SPEC_FAILS(spec_for("data.csv", "a,label\n1,0\n", ", label_dtype=\"int8\""),
                          "CSV: label_dtype must be \"int64\" (class indices) or \"float32\" "
                          "(regression), got \"int8\"");
    EMD_ASSERT_SPEC_FAILS("CSV()", "CSV: missing required argument 'path'");
}

Test(csv, the_bundled_iris_file_standardises_with_training_statistics)
{
    em_dataset *d = emd_new(emd_fmt("CSV(path=\"%s/iris.csv\", standardize=true)",
                                    DATA_EXAMPLES_DIR));
    cr_assert_eq(em_dataset_len(d), 150);
    em_dataset *p[2];
    cr_assert_eq(em_random_split(d, 2, (const double[]){0.8, 0.2}, 0, p), EM_OK);
    cr_assert_eq(em_dataset_fit_scaler(d, p[0]), EM_OK, "%s", em_last_error());
    /* over the training split, each feature now has mean 0 and std 1 */
    em_dataloader *dl = em_dataloader_new(p[0], 1000, false, 0);
    em_tensor *x, *y;
    cr_assert(em_dataloader_next(dl, &x, &y), "%s", em_last_error());
    EMT_ASSERT_SHAPE(x, EM_SHAPE(120, 4));
    double *v = emt_values(x);
    for (int j = 0; j < 4; j++) {
        double m = 0, s = 0;
        for (int i = 0; i < 120; i++)
            m += v[i * 4 + j];
        m /= 120;
        for (int i = 0; i < 120; i++)
            s += (v[i * 4 + j] - m) * (v[i * 4 + j] - m);
        cr_assert_float_eq(m, 0.0, 1e-5, "feature %d mean %g", j, m);
        cr_assert_float_eq(sqrt(s / 120), 1.0, 1e-5, "feature %d std", j);
    }
    free(v);
    em_release(x);
    em_release(y);
    em_dataloader_free(dl);
    em_dataset_free(p[0]);
    em_dataset_free(p[1]);
    em_dataset_free(d);
}
