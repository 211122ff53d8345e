"""pycnn.metrics against Keras (tf.keras 2.21 computed every number below), standalone and as
the model uses them, and the C confusion counting against a NumPy reference."""
from __future__ import annotations

import re

import numpy as np
import pytest

from pycnn import _C, losses, metrics

from binding_checks import assert_every_array_checked

# MDATA: inputs. MKERAS: (class, kwargs, y_true key, y_pred key, sample_weight key, the metric's
# name in tf.keras (unique suffixes _1, _2 ... are tf.keras' per-process counters), result)
# after update_state on the first 6 samples, then on the last 6 (with their sample weights).
MDATA = {
    'probs': [[0.14995603263378143, 0.8440384268760681, 0.006005556788295507], [0.9105788469314575, 0.06757137179374695, 0.02184981293976307], [0.24742482602596283, 0.16260388493537903, 0.5899713039398193], [0.4000000059604645, 0.4000000059604645, 0.20000000298023224], [0.0075241257436573505, 0.00906013511121273, 0.9834157228469849], [0.11605760455131531, 0.7173612713813782, 0.16658110916614532], [0.022275784984230995, 0.7119415998458862, 0.26578259468078613], [0.515631914138794, 0.10921799391508102, 0.37515008449554443], [0.13777588307857513, 0.6551924347877502, 0.20703166723251343], [0.8215534090995789, 0.02386348508298397, 0.15458311140537262], [0.826544463634491, 0.10696292668581009, 0.06649262458086014], [0.6073686480522156, 0.28856703639030457, 0.10406429320573807]],
    'labels': [2, 0, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0],
    'onehot': [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]],
    'bin_true': [[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    'bin_pred': [[0.5, 0.0, 1.0], [0.25, 0.75, 0.5025125741958618], [0.30000001192092896, 0.30000001192092896, 0.30000001192092896], [0.5747048258781433, 0.27950307726860046, 0.179484561085701], [0.4216023087501526, 0.2558716833591461, 0.7599202990531921], [0.8930639624595642, 0.8041476607322693, 0.1210026666522026], [0.7872111201286316, 0.015103263780474663, 0.13519501686096191], [0.7007939219474792, 0.3222891092300415, 0.8271065950393677], [0.6884231567382812, 0.6402764320373535, 0.6006072163581848], [0.913058876991272, 0.8321701884269714, 0.029406851157546043], [0.98473060131073, 0.4312736988067627, 0.29550105333328247], [0.8694217801094055, 0.9190005660057068, 0.7727999687194824]],
    'bin1_true': [[0.0], [1.0], [1.0], [0.0], [1.0], [0.0], [1.0], [1.0], [0.0], [1.0], [0.0], [0.0]],
    'bin1_pred': [[0.5], [0.699999988079071], [0.7477173805236816], [0.356559693813324], [0.07739565521478653], [0.1758488267660141], [0.5676991939544678], [0.47245821356773376], [0.6873399615287781], [0.3483930826187134], [0.5963481068611145], [0.3755841553211212]],
    'zeros_true': [[0.0], [0.0], [0.0], [0.0], [0.0], [0.0], [0.0], [0.0], [0.0], [0.0], [0.0], [0.0]],
    'logit_pred': [[-0.40191587805747986, 0.03510509058833122, 2.549152135848999], [-1.8028827905654907, -2.0478546619415283, -0.13304419815540314], [-0.13313990831375122, -1.6289172172546387, -1.7589130401611328], [0.7553183436393738, 2.6756703853607178, 1.4259837865829468], [1.3702422380447388, 2.4914748668670654, -3.981945514678955], [-3.02065372467041, -1.4107964038848877, -2.3902223110198975], [-1.9787954092025757, 0.1397480070590973, -2.568779230117798], [-0.8869940638542175, -4.086309432983398, -1.9479491710662842], [2.6910958290100098, -1.0857901573181152, 0.648277759552002], [1.4163084030151367, -0.9818047285079956, 1.1581695079803467], [0.4290705621242523, 1.394810438156128, -1.2711055278778076], [-2.880342721939087, -2.0442397594451904, -1.109633207321167]],
    'reg_true': [[0.535828709602356, -0.20430898666381836], [-0.39880630373954773, -0.17968137562274933], [1.0997568368911743, -0.5754988789558411], [1.5113316774368286, -1.2275928258895874], [-0.5922352075576782, 0.8550026416778564], [0.5178268551826477, -0.8555092811584473], [-0.1090339869260788, -0.708929717540741], [0.8510212898254395, 0.5397406220436096], [-0.7131093144416809, 0.397183358669281], [-0.3671460449695587, -0.07191658020019531], [0.06461484730243683, -0.5640442371368408], [0.42500728368759155, 0.4602823853492737]],
    'reg_pred': [[0.4259316623210907, 1.1046396493911743], [-0.2717411518096924, -1.4828593730926514], [-0.4890719950199127, 0.2007368952035904], [0.02198571339249611, 0.5786880254745483], [0.8064178228378296, -0.11758989840745926], [-0.11037013679742813, -0.9874075055122375], [1.0330954790115356, -0.2639365792274475], [-1.0833077430725098, -1.1143739223480225], [-0.41476577520370483, 1.5553991794586182], [0.7725462913513184, -1.6940422058105469], [-0.12361443787813187, 0.2639596462249756], [0.6265573501586914, 0.3436627984046936]],
    'pos_true': [[1.124483585357666, 1.5734937191009521], [0.560293436050415, 0.46454665064811707], [0.3614579439163208, 1.190340280532837], [0.1580633819103241, 0.6911618113517761], [1.3287049531936646, 0.5555539727210999], [0.5192781090736389, 0.46812254190444946], [0.9465920329093933, 1.512508749961853], [0.5275332927703857, 1.064350962638855], [1.9809839725494385, 1.0022200345993042], [0.5395864844322205, 1.6775034666061401], [1.8104456663131714, 1.4928581714630127], [0.6508667469024658, 1.0010852813720703]],
    'pos_pred': [[0.7107550501823425, 1.8532863855361938], [0.12032356858253479, 1.7608901262283325], [0.5966251492500305, 0.378734290599823], [1.695365071296692, 1.6046148538589478], [0.1762831062078476, 0.6603195071220398], [0.27875399589538574, 1.5194095373153687], [1.8175926208496094, 0.6535215973854065], [0.7762166857719421, 0.16285626590251923], [0.2909173369407654, 0.2216523438692093], [1.4759622812271118, 0.4942248463630676], [0.9856628775596619, 0.6141211986541748], [1.0874577760696411, 1.153719186782837]],
    'exact_pred': [[1.0], [1.0], [2.0], [2.0], [1.0], [1.0], [1.0], [1.0], [2.0], [1.0], [1.0], [2.0]],
    'exact_true': [[1.0], [0.0], [1.0], [2.0], [1.0], [1.0], [1.0], [1.0], [1.0], [0.0], [1.0], [1.0]],
    'sw': [0.12277636677026749, 0.8041238188743591, 1.1163052320480347, 0.6052406430244446, 1.372094750404358, 0.0, 1.8699636459350586, 1.5125672817230225, 1.752284288406372, 1.0441964864730835, 0.9309470057487488, 0.6174485087394714],
    'seg_true': [[[2, 0, 2, 1], [2, 0, 0, 2], [1, 0, 0, 0], [1, 2, 1, 2]], [[2, 1, 2, 2], [0, 2, 2, 2], [1, 1, 1, 1], [2, 1, 2, 2]]],
    'seg_pred': [[[[0.9502655267715454, 0.8900948762893677, 0.7331513166427612], [0.9301317930221558, 0.026880577206611633, 0.010714996606111526], [0.2545253038406372, 0.0066977390088140965, 0.5598911643028259], [0.1978001743555069, 0.8771738409996033, 0.0960821881890297]], [[0.7728484869003296, 0.06047559902071953, 0.9386404156684875], [0.36382097005844116, 0.2785942256450653, 0.32108885049819946], [0.7050343155860901, 0.8655975461006165, 0.6694740056991577], [0.14072050154209137, 0.373909592628479, 0.48702704906463623]], [[0.27283912897109985, 0.9344176650047302, 0.707112729549408], [0.7015544772148132, 0.24822089076042175, 0.5309041142463684], [0.232516810297966, 0.32239043712615967, 0.7765569686889648], [0.24974091351032257, 0.6825569868087769, 0.24146752059459686]], [[0.793269693851471, 0.16007272899150848, 0.8837952017784119], [0.051894333213567734, 0.21340647339820862, 0.6571133136749268], [0.3592660427093506, 0.16304992139339447, 0.15016092360019684], [0.5229452848434448, 0.30768439173698425, 0.9029821753501892]]], [[[0.7469123601913452, 0.4899168014526367, 0.6519198417663574], [0.22378838062286377, 0.43114274740219116, 0.807526171207428], [0.9025169610977173, 0.14857898652553558, 0.3203434646129608], [0.7736064791679382, 0.2865656614303589, 0.33836695551872253]], [[0.0978395938873291, 0.8361451029777527, 0.11031338572502136], [0.6748566627502441, 0.09212715178728104, 0.26419565081596375], [0.925780177116394, 0.1201501414179802, 0.7843613028526306], [0.217144176363945, 0.8224904537200928, 0.3332868218421936]], [[0.5390934944152832, 0.8135647773742676, 0.08972817659378052], [0.3794017732143402, 0.9036325216293335, 0.2645239233970642], [0.5678660869598389, 0.9111544489860535, 0.7046492695808411], [0.9170416593551636, 0.5541478395462036, 0.6708964705467224]], [[0.06446897983551025, 0.9432716369628906, 0.4205426275730133], [0.5349119305610657, 0.5321556329727173, 0.3142527937889099], [0.9583522081375122, 0.6573256254196167, 0.5304264426231384], [0.15275593101978302, 0.7311699390411377, 0.640979528427124]]]],
    'mask_true': [[[0.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]], [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]]],
    'mask_pred': [[[0.5, 0.8155498504638672, 0.42494437098503113, 0.9579002261161804], [0.2587633430957794, 0.09848017990589142, 0.4839085340499878, 0.7292433977127075], [0.3506445586681366, 0.24426880478858948, 0.5619558691978455, 0.820923924446106], [0.5757083296775818, 0.6005077958106995, 0.3958086669445038, 0.6542862057685852]], [[0.7601182460784912, 0.07867244631052017, 0.9774044156074524, 0.4324931800365448], [0.458675742149353, 0.4949404001235962, 0.7326679229736328, 0.47097048163414], [0.606331467628479, 0.29785647988319397, 0.2539472281932831, 0.5132328867912292], [0.11967216432094574, 0.04679599404335022, 0.710351288318634, 0.14499832689762115]]],
    'probs_argmax': [1, 0, 2, 0, 2, 1, 1, 0, 1, 0, 0, 0],
}
MKERAS = [
    ('Accuracy', {}, 'exact_true', 'exact_pred', None, 'accuracy', 0.5833333134651184),
    ('BinaryAccuracy', {}, 'bin_true', 'bin_pred', None, 'binary_accuracy', 0.3611111044883728),
    ('BinaryAccuracy', {'threshold': 0.3}, 'bin_true', 'bin_pred', 'sw', 'binary_accuracy', 0.4022711217403412),
    ('CategoricalAccuracy', {}, 'onehot', 'probs', None, 'categorical_accuracy', 0.5833333134651184),
    ('CategoricalAccuracy', {}, 'onehot', 'probs', 'sw', 'categorical_accuracy', 0.5129055976867676),
    ('SparseCategoricalAccuracy', {}, 'labels', 'probs', None, 'sparse_categorical_accuracy', 0.5833333134651184),
    ('SparseCategoricalAccuracy', {}, 'labels', 'probs', 'sw', 'sparse_categorical_accuracy', 0.5129055976867676),
    ('TopKCategoricalAccuracy', {'k': 2}, 'onehot', 'probs', None, 'top_k_categorical_accuracy', 0.75),
    ('SparseTopKCategoricalAccuracy', {'k': 1}, 'labels', 'probs', None, 'sparse_top_k_categorical_accuracy', 0.6666666865348816),
    ('SparseTopKCategoricalAccuracy', {'k': 2}, 'labels', 'probs', 'sw', 'sparse_top_k_categorical_accuracy', 0.6812189221382141),
    ('MeanAbsoluteError', {}, 'reg_true', 'reg_pred', None, 'mean_absolute_error', 0.9320611953735352),
    ('MeanSquaredError', {}, 'reg_true', 'reg_pred', 'sw', 'mean_squared_error', 1.3748385906219482),
    ('RootMeanSquaredError', {}, 'reg_true', 'reg_pred', None, 'root_mean_squared_error', 1.1082618236541748),
    ('RootMeanSquaredError', {}, 'reg_true', 'reg_pred', 'sw', 'root_mean_squared_error', 1.1725350618362427),
    ('MeanAbsolutePercentageError', {}, 'reg_true', 'reg_pred', None, 'mean_absolute_percentage_error', 311.8468322753906),
    ('MeanSquaredLogarithmicError', {}, 'pos_true', 'pos_pred', 'sw', 'mean_squared_logarithmic_error', 0.2368033081293106),
    ('BinaryCrossentropy', {}, 'bin_true', 'bin_pred', None, 'binary_crossentropy', 2.110954523086548),
    ('BinaryCrossentropy', {'from_logits': True, 'label_smoothing': 0.1}, 'bin_true', 'logit_pred', 'sw', 'binary_crossentropy', 0.9328593611717224),
    ('CategoricalCrossentropy', {}, 'onehot', 'probs', None, 'categorical_crossentropy', 1.5852655172348022),
    ('SparseCategoricalCrossentropy', {'from_logits': True}, 'labels', 'logit_pred', 'sw', 'sparse_categorical_crossentropy', 1.0805076360702515),
    ('KLDivergence', {}, 'onehot', 'probs', None, 'kullback_leibler_divergence', 1.5852628946304321),
    ('Poisson', {}, 'pos_true', 'pos_pred', None, 'poisson', 1.3745803833007812),
    ('Hinge', {}, 'bin_true', 'logit_pred', None, 'hinge', 1.1603325605392456),
    ('SquaredHinge', {}, 'bin_true', 'logit_pred', None, 'squared_hinge', 3.0624425411224365),
    ('CategoricalHinge', {}, 'onehot', 'logit_pred', None, 'categorical_hinge', 1.630506157875061),
    ('LogCoshError', {}, 'reg_true', 'reg_pred', None, 'logcosh', 0.4716548025608063),
    ('CosineSimilarity', {}, 'reg_true', 'reg_pred', None, 'cosine_similarity', -0.11047834157943726),
    ('Precision', {}, 'bin_true', 'bin_pred', None, 'precision', 0.3684210479259491),
    ('Precision', {'thresholds': [0.0, 0.5, 1.0]}, 'bin_true', 'bin_pred', None, 'precision_1', [0.48571428656578064, 0.3684210479259491, 0.0]),
    ('Precision', {'thresholds': [0.3, 0.6]}, 'bin_true', 'bin_pred', 'sw', 'precision_2', [0.4591358006000519, 0.4332221746444702]),
    ('Precision', {'top_k': 1}, 'onehot', 'probs', None, 'precision_3', 0.5833333134651184),
    ('Precision', {'class_id': 1, 'thresholds': 0.3}, 'bin_true', 'bin_pred', None, 'precision_4', 0.2857142984867096),
    ('Recall', {}, 'bin_true', 'bin_pred', None, 'recall', 0.3888888955116272),
    ('Recall', {'thresholds': [0.0, 0.25, 0.5, 0.75, 1.0]}, 'bin_true', 'bin_pred', 'sw', 'recall_1', [0.9936099052429199, 0.7027590274810791, 0.4639413356781006, 0.12946204841136932, 0.0]),
    ('Recall', {'top_k': 2, 'class_id': 2}, 'onehot', 'probs', None, 'recall_2', 0.5),
    ('Recall', {}, 'zeros_true', 'bin1_pred', None, 'recall_3', 0.0),
    ('Precision', {}, 'zeros_true', 'bin1_pred', None, 'precision_5', 0.0),
    ('TruePositives', {}, 'bin_true', 'bin_pred', None, 'true_positives', 7.0),
    ('TrueNegatives', {'thresholds': [0.3, 0.5]}, 'bin_true', 'bin_pred', 'sw', 'true_negatives', [3.7687981128692627, 6.212312698364258]),
    ('FalsePositives', {}, 'bin_true', 'bin_pred', None, 'false_positives', 12.0),
    ('FalseNegatives', {'thresholds': [0.0, 0.5, 1.0]}, 'bin_true', 'bin_pred', None, 'false_negatives', [1.0, 11.0, 18.0]),
    ('AUC', {}, 'bin_true', 'bin_pred', None, 'auc', 0.22839505970478058),
    ('AUC', {}, 'bin_true', 'bin_pred', 'sw', 'auc_1', 0.2746516466140747),
    ('AUC', {'curve': 'PR'}, 'bin_true', 'bin_pred', None, 'auc_2', 0.3543985188007355),
    ('AUC', {'curve': 'PR'}, 'bin1_true', 'bin1_pred', 'sw', 'auc_3', 0.6862863302230835),
    ('AUC', {'summation_method': 'minoring'}, 'bin_true', 'bin_pred', None, 'auc_4', 0.2253086417913437),
    ('AUC', {'summation_method': 'majoring', 'curve': 'PR'}, 'bin_true', 'bin_pred', None, 'auc_5', 0.37854427099227905),
    ('AUC', {'num_thresholds': 5}, 'bin_true', 'bin_pred', None, 'auc_6', 0.25154319405555725),
    ('AUC', {'thresholds': [0.25, 0.5, 0.75]}, 'bin_true', 'bin_pred', None, 'auc_7', 0.25154319405555725),
    ('AUC', {'thresholds': [0.1, 0.3, 0.35, 0.9]}, 'bin_true', 'bin_pred', None, 'auc_8', 0.33487656712532043),
    ('AUC', {'multi_label': True}, 'bin_true', 'bin_pred', None, 'auc_9', 0.15952380001544952),
    ('AUC', {'multi_label': True, 'curve': 'PR', 'label_weights': [1.0, 0.5, 2.0]}, 'bin_true', 'bin_pred', 'sw', 'auc_10', 0.38457727432250977),
    ('AUC', {'from_logits': True}, 'bin_true', 'logit_pred', None, 'auc_11', 0.5941357612609863),
    ('AUC', {}, 'zeros_true', 'bin1_pred', None, 'auc_12', 0.0),
    ('AUC', {'curve': 'PR'}, 'zeros_true', 'bin1_pred', None, 'auc_13', 0.0),
    ('F1Score', {}, 'onehot', 'probs', None, 'f1_score', [0.7692307233810425, 0.5, 0.5]),
    ('F1Score', {'average': 'micro', 'threshold': 0.5}, 'bin_true', 'bin_pred', None, 'f1_score', 0.37837839126586914),
    ('F1Score', {'average': 'macro', 'threshold': 0.3}, 'bin_true', 'bin_pred', 'sw', 'f1_score', 0.47990623116493225),
    ('F1Score', {'average': 'weighted'}, 'onehot', 'probs', 'sw', 'f1_score', 0.6030154228210449),
    ('FBetaScore', {'beta': 2.0, 'threshold': 0.5}, 'bin_true', 'bin_pred', None, 'fbeta_score', [0.4166666269302368, 0.3448275923728943, 0.38461539149284363]),
    ('FBetaScore', {'beta': 0.5, 'average': 'macro'}, 'onehot', 'probs', None, 'fbeta_score', 0.5804113745689392),
    ('IoU', {'num_classes': 3, 'target_class_ids': [0, 2]}, 'labels', 'probs_argmax', None, 'io_u', 0.4791666865348816),
    ('MeanIoU', {'num_classes': 3}, 'labels', 'probs_argmax', 'sw', 'mean_io_u', 0.32160696387290955),
    ('MeanIoU', {'num_classes': 3, 'sparse_y_pred': False}, 'seg_true', 'seg_pred', None, 'mean_io_u_1', 0.2555827796459198),
    ('IoU', {'num_classes': 3, 'target_class_ids': [1], 'sparse_y_true': False, 'sparse_y_pred': False}, 'onehot', 'probs', None, 'io_u_1', 0.1666666716337204),
    ('BinaryIoU', {}, 'mask_true', 'mask_pred', None, 'binary_io_u', 0.44999998807907104),
    ('BinaryIoU', {'target_class_ids': [1], 'threshold': 0.3}, 'bin1_true', 'bin1_pred', 'sw', 'binary_io_u_1', 0.540277898311615),
    ('MeanIoU', {'num_classes': 3, 'ignore_class': 0}, 'labels', 'probs_argmax', None, 'mean_io_u_2', 0.1944444626569748),
]
MEAN_RESULT = 2.5999999046325684
SUM_RESULT = 6.5
TRACKER_RESULT = 0.2672707736492157


def _arr(key):
    v = MDATA[key]
    return np.array(v, np.int64 if key in ("labels", "probs_argmax", "seg_true") else np.float32)


@pytest.mark.parametrize("spec", MKERAS, ids=lambda s: f"{s[0]}-{s[1]}-{s[2]}-{s[4]}")
def test_metric_matches_keras(spec):
    cls, kw, t, p, w, name, want = spec
    m = getattr(metrics, cls)(**kw)
    assert m.name == re.sub(r"_\d+$", "", name)
    yt, yp = _arr(t), _arr(p)
    h = len(yt) // 2
    sw = None if w is None else _arr(w)
    m.update_state(yt[:h], yp[:h], sample_weight=None if sw is None else sw[:h])
    m.update_state(yt[h:], yp[h:], sample_weight=None if sw is None else sw[h:])
    got = m.result()
    if isinstance(want, list):
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)
    else:
        assert isinstance(got, float)
        assert got == pytest.approx(want, rel=2e-6, abs=1e-7)
    # reset_state forgets everything: the same updates give the same result
    m.reset_state()
    m.update_state(yt[:h], yp[:h], sample_weight=None if sw is None else sw[:h])
    m.update_state(yt[h:], yp[h:], sample_weight=None if sw is None else sw[h:])
    np.testing.assert_array_equal(m.result(), got)


def test_mean_sum_and_the_loss_tracker():
    m = metrics.Mean()
    m.update_state([1.0, 2.0, 4.0])
    m.update_state(3.0, sample_weight=2.0)
    assert m.result() == MEAN_RESULT
    s = metrics.Sum()
    s.update_state([1.0, 2.0], sample_weight=[0.5, 3.0])
    assert s.result() == SUM_RESULT
    tracker = metrics.Mean("loss")
    for value, batch in [(0.2622, 128), (0.31415926, 128), (np.float64(0.1), np.int64(32))]:
        tracker.update_state(value, sample_weight=batch)
    assert tracker.name == "loss" and tracker.result() == TRACKER_RESULT
    old = metrics.Mean("loss")
    for value, batch in [(0.2622, 128), (0.31415926, 128), (0.1, 32)]:
        old.update(value, batch)
    assert old.result() == TRACKER_RESULT
    assert metrics.Mean().result() == 0.0


def test_results_are_float32_rounded_python_floats():
    m = metrics.Mean()
    m.update_state([0.1, 0.2])
    r = m.result()
    assert type(r) is float and r == float(np.float32(np.float32(0.3) / np.float32(2)))


# ---- resolution of compile(metrics=[...]) -------------------------------------------------------

@pytest.mark.parametrize("loss,shape,cls", [
    ("sparse_categorical_crossentropy", (None, 10), metrics.SparseCategoricalAccuracy),
    (losses.SparseCategoricalCrossentropy(from_logits=True), (None, 10),
     metrics.SparseCategoricalAccuracy),
    ("categorical_crossentropy", (None, 10), metrics.CategoricalAccuracy),
    ("binary_crossentropy", (None, 1), metrics.BinaryAccuracy),
    (losses.MeanSquaredError(), (None, 1), metrics.BinaryAccuracy),
    ("sparse_categorical_crossentropy", 10, metrics.SparseCategoricalAccuracy),
    ("mse", 4, metrics.CategoricalAccuracy),
])
def test_accuracy_resolves_as_keras_and_keeps_its_name(loss, shape, cls):
    for ident in ("accuracy", "acc"):
        m = metrics.get(ident, loss, shape)
        assert type(m) is cls and m.name == ident
    assert metrics.get("accuracy", loss, shape) is not metrics.get("accuracy", loss, shape)


def test_crossentropy_and_capitalised_accuracy_resolve_by_shape_as_tf_keras():
    yt, yp = _arr("labels"), _arr("probs")
    ce = metrics.get("ce", "sparse_categorical_crossentropy", (None, 3))
    assert ce.name == "ce"
    ce.update_state(yt, yp)
    assert ce.result() == pytest.approx(float(np.mean(
        losses.sparse_categorical_crossentropy(yt, yp))), rel=1e-6)
    assert type(metrics.get("Accuracy", "categorical_crossentropy", (None, 3))) is \
        metrics.CategoricalAccuracy
    ce = metrics.get("crossentropy", "binary_crossentropy", (None, 1))
    ce.update_state(_arr("bin1_true"), _arr("bin1_pred"))
    assert ce.result() == pytest.approx(float(np.mean(
        losses.binary_crossentropy(_arr("bin1_true"), _arr("bin1_pred")))), rel=1e-6)


def test_one_threshold_in_a_list_gives_a_float_as_tf_keras():
    m = metrics.Precision(thresholds=[0.5])
    m.update_state(_arr("bin_true"), _arr("bin_pred"))
    assert m.result() == pytest.approx(0.3684210479259491, rel=1e-6)   # = Precision()


def test_accuracy_follows_the_label_shape_when_given():
    # Keras decides by shapes: binary crossentropy on 3 units is categorical accuracy
    m = metrics.get("accuracy", "binary_crossentropy", (None, 3), y_true_shape=(None, 3))
    assert type(m) is metrics.CategoricalAccuracy
    m = metrics.get("accuracy", "categorical_crossentropy", (None, 3), y_true_shape=(None, 1))
    assert type(m) is metrics.SparseCategoricalAccuracy
    m = metrics.get("accuracy", None, (None, 4, 4, 3), y_true_shape=(None, 4, 4))
    assert type(m) is metrics.SparseCategoricalAccuracy


@pytest.mark.parametrize("ident,name,fn", [
    ("mae", "mae", losses.mean_absolute_error), ("mse", "mse", losses.mean_squared_error),
    ("MAPE", "MAPE", losses.mean_absolute_percentage_error),
    ("binary_crossentropy", "binary_crossentropy", losses.binary_crossentropy),
    ("kld", "kld", losses.kl_divergence), ("logcosh", "logcosh", losses.log_cosh),
])
def test_loss_named_metrics_keep_the_given_name(ident, name, fn):
    m = metrics.get(ident, "mse", (None, 2))
    assert m.name == name
    yt, yp = _arr("pos_true") / 2, _arr("pos_pred") / 2.5
    m.update_state(yt, yp)
    assert m.result() == pytest.approx(float(np.mean(fn(yt, yp))), rel=1e-6)


def test_get_by_class_name_class_instance_and_function():
    assert type(metrics.get("AUC")) is metrics.AUC and metrics.get("AUC").name == "auc"
    assert type(metrics.get(metrics.Precision)) is metrics.Precision
    p = metrics.Recall()
    assert metrics.get(p) is p

    def my_metric(y_true, y_pred):
        return np.abs(y_true - y_pred).max(axis=-1)
    m = metrics.get(my_metric)
    assert m.name == "my_metric"
    m.update_state(np.zeros((2, 2)), np.array([[1.0, 3.0], [2.0, 0.0]]))
    assert m.result() == 2.5
    with pytest.raises(ValueError, match="acuracy"):
        metrics.get("acuracy")
    assert "sparse_categorical_accuracy" in metrics._BY_NAME


# ---- user-written metrics: add_weight and variables -------------------------------------------

class CountPositives(metrics.Metric):
    def __init__(self, name="count_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.positives = self.add_weight(name="positives", shape=(), initializer="zeros")
        self.seen = self.add_weight(name="seen", initializer="ones")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.positives.assign_add(np.sum(np.asarray(y_pred) > 0.5))
        self.seen.assign(self.seen + len(y_pred))

    def result(self):
        return self.positives / self.seen


def test_user_metrics_with_add_weight_reset_to_initial_values():
    m = CountPositives()
    m.update_state(None, np.array([0.2, 0.7, 0.9]))
    assert m.positives.numpy() == 2.0 and m.seen.numpy() == 4.0
    assert m.positives.numpy().dtype == np.float32
    assert float(m.result()) == 0.5
    m.reset_state()
    assert m.positives.numpy() == 0.0 and m.seen.numpy() == 1.0
    assert [v.name for v in m.variables] == ["positives", "seen"]
    m.positives.assign_sub(1)
    assert float(m.positives) == -1.0


def test_metric_configs_round_trip():
    for m in (metrics.BinaryAccuracy(threshold=0.7), metrics.AUC(curve="PR", num_thresholds=50),
              metrics.Precision(thresholds=[0.2, 0.4], top_k=2, class_id=1),
              metrics.F1Score(average="macro", threshold=0.4), metrics.MeanIoU(num_classes=4),
              metrics.TopKCategoricalAccuracy(k=3)):
        cfg = m.get_config()
        back = type(m).from_config(cfg)
        assert back.get_config() == cfg and back.name == m.name
    assert metrics.BinaryAccuracy(threshold=0.7).get_config() == {
        "name": "binary_accuracy", "dtype": "float32", "threshold": 0.7}


def test_bad_metric_arguments():
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="XY")
    with pytest.raises(ValueError, match="average"):
        metrics.F1Score(average="mean")
    with pytest.raises(ValueError, match="threshold"):
        metrics.F1Score(threshold=2.0)
    with pytest.raises(ValueError, match="Threshold values"):
        metrics.Precision(thresholds=[1.5])
    with pytest.raises(ValueError, match="2D"):
        metrics.F1Score().update_state(np.ones(3), np.ones(3))


# ---- the C counting ---------------------------------------------------------------------------

def _ref_counts(pred, truth, w, thr):
    pos = truth != 0
    w = np.ones(pred.shape) if w is None else w.astype(np.float64)
    out = np.zeros((4, pred.shape[1], len(thr)))
    for k, t in enumerate(thr):
        hit = pred > t
        out[0, :, k] = (w * (hit & pos)).sum(0)
        out[1, :, k] = (w * (hit & ~pos)).sum(0)
        out[2, :, k] = (w * (~hit & ~pos)).sum(0)
        out[3, :, k] = (w * (~hit & pos)).sum(0)
    return out


@pytest.mark.parametrize("labels", [1, 4])
def test_confusion_thresholds_against_numpy(labels):
    r = np.random.default_rng(labels)
    pred = r.random((300, labels)).astype(np.float32)
    pred[:20] = np.float32(0.5)                      # ties at a threshold
    truth = r.integers(0, 2, (300, labels)).astype(np.float32)
    w = r.random((300, labels)).astype(np.float32)
    thr = np.array([0.1, 0.5, 0.5, 0.9, 0.0], np.float32)
    counts = np.full((4, labels, 5), np.nan)
    _C.confusion_thresholds(pred, truth, w, thr, counts)
    np.testing.assert_allclose(counts, _ref_counts(pred, truth, w, thr), rtol=1e-12)
    # evenly spaced thresholds: the bucketed path gives the same counts away from rounding
    even = (np.arange(11) / 10).astype(np.float32)
    pred2 = (r.integers(0, 1000, (300, labels)) / 1000 + 0.0005).astype(np.float32)
    _C.confusion_thresholds(pred2, truth, None, even, (c2 := np.empty((4, labels, 11))),
                            evenly=True)
    np.testing.assert_allclose(c2, _ref_counts(pred2, truth, None, even))


def test_confusion_thresholds_with_epsilon_puts_zero_predictions_first():
    thr = np.array([-1e-7, 0.5, 1 + 1e-7], np.float32)
    pred = np.array([[0.0], [1.0], [0.5], [-0.2]], np.float32)
    truth = np.array([[1.0], [0.0], [1.0], [0.0]], np.float32)
    c = np.empty((4, 1, 3))
    _C.confusion_thresholds(pred, truth, None, thr, c, evenly=True, with_epsilon=True)
    np.testing.assert_array_equal(c[:, 0], _ref_counts(np.clip(pred, 0, 1), truth, None,
                                                        thr)[:, 0])


def test_confusion_matrix_kernel():
    t = np.array([0, 1, 2, 2, 1], np.int64)
    p = np.array([0, 2, 2, 1, 1], np.int64)
    cm = np.zeros((3, 3))
    _C.confusion_matrix(t, p, np.array([1, 2, 3, 4, 5], np.float32), cm)
    want = np.zeros((3, 3))
    np.add.at(want, (t, p), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(cm, want)
    with pytest.raises(ValueError, match=r"y_pred\[1\] = 3"):
        _C.confusion_matrix(t, np.array([0, 3, 0, 0, 0], np.int64), None, cm)
    with pytest.raises(ValueError, match="'counts'"):
        _C.confusion_thresholds(np.ones((2, 1), np.float32), np.ones((2, 1), np.float32), None,
                                np.ones(3, np.float32), np.empty((4, 1, 2)))


def _f(shape, dtype=np.float32):
    return np.ones(shape, dtype)


CT_ARGS = {"y_pred": _f((3, 2)), "y_true": _f((3, 2)), "weights": _f((3, 2)),
           "thresholds": _f((4,)), "counts": _f((4, 2, 4), np.float64)}
CM_ARGS = {"y_true": np.zeros(3, np.int64), "y_pred": np.zeros(3, np.int64),
           "weights": _f((3,)), "cm": _f((2, 2), np.float64)}


@pytest.mark.parametrize("fn,args,outs", [("confusion_thresholds", CT_ARGS, ("counts",)),
                                          ("confusion_matrix", CM_ARGS, ("cm",))])
def test_metric_kernels_check_every_array(fn, args, outs):
    assert_every_array_checked(getattr(_C, fn), fn, args, outs)


# tf.keras 2.21 on EXTRA_DATA: SparseCategoricalAccuracy on (2, 3, 3) labels with one weight
# per image [1, 3]; AUC(label_weights=[0.3, 1.7]) and AUC(num_thresholds=3, curve="PR") on
# bt/bp; BinaryAccuracy with labels (4,) against predictions (4, 1); labels (N, 1) for
# SparseCategoricalAccuracy.
EXTRA_DATA = {'seg_t': [[[2, 0, 0], [0, 1, 2], [1, 0, 1]], [[1, 2, 2], [2, 0, 2], [0, 1, 0]]], 'seg_p': [[[[0.657433032989502, 0.5622656345367432, 0.15006226301193237], [0.4326307773590088, 0.6692972779273987, 0.422784686088562], [0.6331843733787537, 0.9674359560012817, 0.6830648183822632]], [[0.3916248381137848, 0.18725256621837616, 0.34596067667007446], [0.5110659599304199, 0.8912094235420227, 0.7755639553070068], [0.31814658641815186, 0.9242169260978699, 0.47090989351272583]], [[0.6937588453292847, 0.10720730572938919, 0.10454355925321579], [0.2019074410200119, 0.8844496607780457, 0.6798114776611328], [0.8492363095283508, 0.644436240196228, 0.4065423905849457]]], [[[0.516578197479248, 0.5934435129165649, 0.8621180057525635], [0.4381861686706543, 0.8922401070594788, 0.6137169599533081], [0.8293561339378357, 0.4980560541152954, 0.6925181150436401]], [[0.3390253782272339, 0.5228285193443298, 0.21622338891029358], [0.10070360451936722, 0.03860412910580635, 0.7019494771957397], [0.4564306139945984, 0.8977341651916504, 0.8351832032203674]], [[0.38509514927864075, 0.9736787676811218, 0.5920619964599609], [0.7658833265304565, 0.4071943461894989, 0.196169912815094], [0.17177700996398926, 0.18120622634887695, 0.6038055419921875]]]], 'bt': [[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]], 'bp': [[0.9373431205749512, 0.7503966093063354], [0.5744665265083313, 0.617272138595581], [0.5065515041351318, 0.9647617936134338], [0.22662606835365295, 0.6890271306037903], [0.5550966858863831, 0.04201178997755051], [0.29614999890327454, 0.9271669387817383], [0.7845648527145386, 0.012831093743443489], [0.29662632942199707, 0.009805348701775074]]}


def test_more_shapes_and_weights_as_keras():
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(np.array(EXTRA_DATA["seg_t"]), np.array(EXTRA_DATA["seg_p"], np.float32),
                   sample_weight=np.array([1.0, 3.0], np.float32))
    assert m.result() == pytest.approx(0.0555555559694767, rel=1e-6)
    bt, bp = np.array(EXTRA_DATA["bt"], np.float32), np.array(EXTRA_DATA["bp"], np.float32)
    m = metrics.AUC(label_weights=[0.3, 1.7])
    m.update_state(bt, bp)
    assert m.result() == pytest.approx(0.33709704875946045, rel=1e-6)
    m = metrics.AUC(num_thresholds=3, curve="PR")
    m.update_state(bt, bp)
    assert m.result() == pytest.approx(0.345395565032959, rel=1e-6)
    m = metrics.BinaryAccuracy()
    m.update_state(np.array([0.0, 1.0, 1.0, 0.0]), np.array([[0.2], [0.7], [0.4], [0.1]]))
    assert m.result() == 0.75
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(np.array([[0], [2], [1]]),
                   np.array([[.5, .2, .3], [.1, .2, .7], [.3, .3, .4]], np.float32))
    assert m.result() == pytest.approx(0.6666666865348816, rel=1e-7)
