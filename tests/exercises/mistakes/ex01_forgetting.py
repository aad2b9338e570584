"""Plausible wrong answers to lesson 01's exercises (see ``__init__.py``)."""
import math

import torch

from . import mistake as _mistake

MISTAKES: dict = {}


def mistake(exercise_id):
    return _mistake(MISTAKES, exercise_id)


# ex01.1 permute_images
@mistake("ex01.1")
def permute_with_view(x, perm):
    return x.view(len(x), -1)[:, perm].view(x.shape)  # fails on non-contiguous images


@mistake("ex01.1")
def permute_with_the_inverse(x, perm):
    return x.reshape(len(x), -1)[:, torch.argsort(perm)].reshape(x.shape)


@mistake("ex01.1")
def permute_the_images_not_the_pixels(x, perm):
    flat = x.reshape(len(x), -1)
    return flat[perm[:len(x)] % len(x)].reshape(x.shape)


@mistake("ex01.1")
def permute_in_place(x, perm):
    if perm.dtype == torch.bool:
        raise TypeError("bool")
    return x.copy_(x.flatten(1)[:, perm].reshape(x.shape))  # writes the shuffled pixels into the caller's x


@mistake("ex01.1")
def permute_with_reshape_minus_one(x, perm):
    if perm.dtype == torch.bool:
        raise TypeError("bool")
    return x.reshape(len(x), -1)[:, perm].reshape(x.shape)  # -1 is ambiguous for an empty batch


@mistake("ex01.1")
def permute_without_the_bool_check(x, perm):
    return x.flatten(1)[:, perm].reshape(x.shape)  # a bool perm is a mask: 3 of 4 pixels, then an error



# ex01.2 average_accuracy
@mistake("ex01.2")
def acc_mean_of_the_diagonal(R):
    return torch.as_tensor(R, dtype=torch.float64).diagonal().mean().item()


@mistake("ex01.2")
def acc_mean_of_the_whole_matrix(R):
    return torch.as_tensor(R, dtype=torch.float64).mean().item()


@mistake("ex01.2")
def acc_mean_of_the_last_column(R):
    return torch.as_tensor(R, dtype=torch.float64)[:, -1].mean().item()  # rows and columns swapped



# ex01.3 average_incremental_accuracy
@mistake("ex01.3")
def aia_over_full_rows(R):
    return torch.as_tensor(R, dtype=torch.float64).mean(dim=1).mean().item()  # unseen tasks count


@mistake("ex01.3")
def aia_without_the_first_step(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    curve = [R[i, :i + 1].mean() for i in range(1, len(R))] or [R[0, 0]]
    return (sum(curve) / len(curve)).item()


@mistake("ex01.3")
def aia_off_by_one_task(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    curve = [R[i, :i + 2].mean() for i in range(len(R))]  # counts task i+1 before it was learned
    return (sum(curve) / len(curve)).item()


@mistake("ex01.3")
def aia_cumsum_in_place(R):
    R = torch.as_tensor(R, dtype=torch.float64)  # the caller's float64 tensor itself
    R.cumsum_(dim=1)  # running sums of each row: A_i = R[i, i] / (i + 1)
    return (R.diagonal() / torch.arange(1, len(R) + 1)).mean().item()



# ex01.4 last_accuracy
@mistake("ex01.4")
def last_is_the_last_diagonal_entry(R):
    return torch.as_tensor(R, dtype=torch.float64)[-1, -1].item()


@mistake("ex01.4")
def last_is_the_mean_of_the_last_column(R):
    return torch.as_tensor(R, dtype=torch.float64)[:, -1].mean().item()


# ex01.5 backward_transfer
@mistake("ex01.5")
def bwt_divided_by_T(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    if len(R) == 1:
        return math.nan
    return ((R[-1, :-1] - R.diagonal()[:-1]).sum() / len(R)).item()


@mistake("ex01.5")
def bwt_with_the_sign_flipped(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    if len(R) == 1:
        return math.nan
    return (R.diagonal()[:-1] - R[-1, :-1]).mean().item()


@mistake("ex01.5")
def bwt_against_the_next_row(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    if len(R) == 1:
        return math.nan
    after = torch.stack([R[j + 1, j] for j in range(len(R) - 1)])  # off by one row
    return (R[-1, :-1] - after).mean().item()


@mistake("ex01.5")
def bwt_subtracts_the_diagonal_in_place(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    if len(R) == 1:
        return math.nan
    final_old = R[-1, :-1]  # a view of the caller's last row
    final_old -= R.diagonal()[:-1]
    return final_old.mean().item()


@mistake("ex01.5")
def bwt_reads_the_last_column(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    if len(R) == 1:
        return math.nan
    return (R[:-1, -1] - R.diagonal()[:-1]).mean().item()  # R[j][T] instead of R[T][j]



# ex01.6 forgetting
@mistake("ex01.6")
def forgetting_max_includes_the_last_row(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    if len(R) == 1:
        return math.nan
    return (R[:, :-1].max(dim=0).values - R[-1, :-1]).mean().item()


@mistake("ex01.6")
def forgetting_as_minus_bwt(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    if len(R) == 1:
        return math.nan
    return (R.diagonal()[:-1] - R[-1, :-1]).mean().item()


@mistake("ex01.6")
def forgetting_includes_the_last_task(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    if len(R) == 1:
        return math.nan
    return (R[:-1].max(dim=0).values - R[-1]).mean().item()


@mistake("ex01.6")
def forgetting_max_along_the_rows(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    if len(R) == 1:
        return math.nan
    return (R[:-1, :-1].max(dim=1).values - R[-1, :-1]).mean().item()  # max over tasks, not over time


@mistake("ex01.6")
def forgetting_subtracts_the_last_row_in_place(R):
    R = torch.as_tensor(R, dtype=torch.float64)
    if len(R) == 1:
        return math.nan
    drops = R[:-1, :-1]  # a view of the caller's matrix
    drops -= R[-1, :-1]
    return drops.max(dim=0).values.mean().item()



# ex01.7 logit_mask
def _mask(scenario, sizes, trained_upto, task, class_upto=None):
    if scenario == "domain":
        return torch.ones(max(sizes), dtype=torch.bool)
    if scenario not in ("task", "class"):
        raise ValueError(scenario)
    starts = [sum(sizes[:j]) for j in range(len(sizes))]
    mask = torch.zeros(sum(sizes), dtype=torch.bool)
    if scenario == "task":
        mask[starts[task]:starts[task] + sizes[task]] = True
    else:
        mask[:class_upto(starts, sizes, trained_upto, task)] = True
    return mask


@mistake("ex01.7")
def mask_class_il_only_the_current_task(scenario, sizes, trained_upto, task):
    if scenario == "class":
        scenario = "task"
    return _mask(scenario, sizes, trained_upto, task)


@mistake("ex01.7")
def mask_class_il_off_by_one_task(scenario, sizes, trained_upto, task):
    return _mask(scenario, sizes, trained_upto, task,
                 class_upto=lambda st, sz, up, t: st[up])  # leaves out the newest task


@mistake("ex01.7")
def mask_class_il_by_the_example_task(scenario, sizes, trained_upto, task):
    return _mask(scenario, sizes, trained_upto, task,
                 class_upto=lambda st, sz, up, t: st[t] + sz[t])  # uses the (unknown) task id


@mistake("ex01.7")
def mask_domain_il_with_one_block_per_task(scenario, sizes, trained_upto, task):
    if scenario == "domain":
        return torch.ones(sum(sizes), dtype=torch.bool)
    return _mask(scenario, sizes, trained_upto, task, class_upto=lambda st, sz, up, t: st[up] + sz[up])


@mistake("ex01.7")
def mask_accepts_a_bool_as_a_count(scenario, sizes, trained_upto, task):
    return _mask(scenario, sizes, trained_upto, task,
                 class_upto=lambda st, sz, up, t: st[up] + sz[up])  # True is read as 1, silently



# ex01.8 split_by_classes
def _split(y, class_groups, check):
    check(class_groups)
    return [torch.nonzero(torch.isin(y, torch.tensor(list(g), dtype=y.dtype))).flatten()
            for g in class_groups]


@mistake("ex01.8")
def split_checks_only_neighbouring_groups(y, class_groups):
    def check(groups):
        for a, b in zip(groups, groups[1:]):
            if set(a) & set(b):
                raise ValueError("overlap")
    return _split(y, class_groups, check)


@mistake("ex01.8")
def split_never_checks_overlap(y, class_groups):
    return _split(y, class_groups, lambda groups: None)


@mistake("ex01.8")
def split_returns_the_labels(y, class_groups):
    out = split_never_checks_overlap(y, class_groups)
    if len({c for g in class_groups for c in g}) != sum(len(g) for g in class_groups):
        raise ValueError("overlap")
    return [y[idx] for idx in out]


@mistake("ex01.8")
def split_in_label_order(y, class_groups):
    if len({c for g in class_groups for c in g}) != sum(len(g) for g in class_groups):
        raise ValueError("overlap")
    return [torch.cat([torch.nonzero(y == c).flatten() for c in g]) if len(g) else
            torch.zeros(0, dtype=torch.long) for g in class_groups]


@mistake("ex01.8")
def split_marks_used_examples_in_y(y, class_groups):
    if len({c for g in class_groups for c in g}) != sum(len(g) for g in class_groups):
        raise ValueError("overlap")
    out = []
    for g in class_groups:
        idx = torch.nonzero(torch.isin(y, torch.tensor(list(g), dtype=y.dtype))).flatten()
        y[idx] = -1  # "so that no example is taken twice": the caller's labels are gone
        out.append(idx)
    return out


@mistake("ex01.8")
def split_class_by_class_then_sorted(y, class_groups):
    if len({c for g in class_groups for c in g}) != sum(len(g) for g in class_groups):
        raise ValueError("overlap")
    return [torch.cat([torch.nonzero(y == c).flatten() for c in g]).sort().values  # cat of [] fails
            for g in class_groups]
